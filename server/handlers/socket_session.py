"""One websocket after its upgrade, whatever carries it: the per-socket session.

Fed the client's bytes (`feed_data`, `feed_eof`), it reads them with the protocol's
`ClientReader`, answers control frames, and turns messages into requests: checked on
arrival (malformed-frame window, token bucket), handled in order by a reader task while
any are queued (the inbox), posts several at a time (posts in flight), each dispatched
on its typed request and refusals answered as `error` frames. Every frame to the client
goes through the hub, so acks, errors, events and pongs share one write path and one
send cap. The session is also the hub's `Peer`: it ends the connection after the hub
wrote the close frame, and tells the hub when the transport drained.

It knows nothing of aiohttp: the adapter (`handlers/ws.py`) gives it a transport, a way
to wait for the transport to drain, and hands it the bytes.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import struct
import termios
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from server.domain.errors import DomainError, EngineUnavailable, RateLimited
from server.handlers.common import ENGINE_ERRORS
from server.hub import GONE, Hub
from server.hub import Transport as HubTransport
from server.protocol import (
    OP_PONG,
    ClientReader,
    Close,
    CloseCode,
    Codec,
    FrameError,
    Message,
    Ping,
    PingRequest,
    PostRequest,
    ProtocolError,
    Request,
    SubRequest,
    UnsubRequest,
    ack_message,
    control_frame,
    error_message,
    pong_message,
    read_request,
)
from server.services.container import Poster, Services
from server.settings import RateLimit

log = logging.getLogger(__name__)

MALFORMED_LIMIT = 10
MALFORMED_WINDOW = 10.0
MAX_POSTS_IN_FLIGHT = 16
# Client messages waiting for the session's reader beyond which the socket is paused.
INBOX_LIMIT = 32
# After its close frame: the peer's time to answer, how long sending may stall before
# the connection is cut off, and the most a closing connection is kept.
CLOSE_GRACE = 2.0
CLOSE_STALL = 3.0
CLOSE_CEILING = 30.0


class Bucket:
    """A local token bucket: socket messages (pings included) are limited per socket."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, limit: RateLimit) -> None:
        self.rate = limit.per_second
        self.burst = float(limit.burst)
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 if a token was taken, else the seconds until one is there."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Transport(HubTransport, Protocol):
    """What the session and the hub need of a transport (asyncio's has it all)."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...


class SocketSession:
    """One socket's reader, request loop, limits and hub connection.

    Idle sockets are the common case, so what only talking, misbehaving, posting or
    closing clients need is allocated on first use (an empty deque alone costs ~600
    bytes): the message inbox and its reader task, the posts in flight, the
    malformed-frame window; the reader itself holds a few slots until a frame comes
    in pieces.
    """

    __slots__ = ("bucket", "closing", "conn", "done", "inbox", "limited_in_a_row", "malformed",
                 "post", "posting", "reader", "svc", "transport", "user", "wait_drained",
                 "wire")  # fmt: skip

    def __init__(
        self,
        svc: Services,
        post: Poster,
        transport: Transport,
        wait_drained: Callable[[], Awaitable[None]],
        codec: Codec,
        user: Any,
        key: str,
        fd: int = -1,
    ) -> None:
        self.svc = svc
        self.post = post
        self.transport = transport
        self.wait_drained = wait_drained
        self.user = user
        self.wire = ClientReader(svc.settings.max_frame_size)
        self.malformed: deque[float] | None = None
        limit = svc.settings.rate_limits.get("socket")
        self.bucket = Bucket(limit) if limit else None
        self.limited_in_a_row = 0
        self.posting: set[asyncio.Future[None]] | None = None
        self.closing = False
        self.inbox: deque[bytes | str | Request] | None = None
        self.reader: asyncio.Task[None] | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # The session is the connection's peer itself: no bound methods kept per socket.
        self.conn = svc.hub.connect(user.id, key, codec, transport, self, fd)

    # --- bytes in ----------------------------------------------------------------------

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        """The client's bytes (aiohttp's payload-parser signature: nothing to give back)."""
        try:
            events = self.wire.receive_data(data)
        except FrameError as err:
            # Failing the connection (RFC 6455 7.1.7): the close frame, then the TCP
            # connection is closed at once; what follows on a broken stream is not read.
            self.svc.hub.close(self.conn, err.code)
            self.transport.close()
            return False, b""
        pongs: list[bytes] = []
        try:
            if events:
                self.conn.idle = 0
            for event in events:
                if isinstance(event, Message):
                    if not self.closing:  # a close frame went out: data is not read
                        self._received(event.data)
                elif isinstance(event, Ping):
                    if not self.closing and self._within_limit(pongs):
                        pongs.append(control_frame(OP_PONG, event.payload))
                elif isinstance(event, Close):
                    # The peer closes: our pongs, what the hub has queued, our close
                    # frame (1000, as aiohttp answers), then the connection ends.
                    self._pong(pongs)
                    self.svc.hub.close(self.conn, 1000)
                    self.closing = True
                    self.transport.close()
            self._pong(pongs)
        except Exception:
            log.exception("websocket reader failed")
            self.transport.abort()
        return False, b""

    def feed_eof(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def _pong(self, pongs: list[bytes]) -> None:
        """The pongs to the pings of one read, in one write through the hub's write path
        (so they count against the send cap at once: not queued for the flush, where
        all the reads of a loop iteration, megabytes under uvloop, would wait unchecked).

        One write, not one per pong: a write per pong (127 bytes) left a ping flooder's
        connection in TCP's persist state once it read with a 4 KiB window, the ~3 MB the
        kernel held drained at ~8 KB/s, and the close timeout cut the connection inside a
        pong, before the 4008 queued behind them (measured; in one write, the same 3 MB
        arrived within 0.2 s).
        """
        if pongs:
            self.svc.hub.write_control(self.conn, b"".join(pongs))
            pongs.clear()

    def _within_limit(self, pongs: list[bytes]) -> bool:
        """Take a token; False (and 4029, after `pongs`, for a client far past the
        limit) if none: a ping is a message like any other."""
        if self.bucket is None:
            return True
        if self.bucket.take() == 0:
            self.limited_in_a_row = 0
            return True
        self.limited_in_a_row += 1
        # Warn first; close only a client that keeps going far past the limit.
        if self.limited_in_a_row > 3 * self.bucket.burst:
            self._pong(pongs)
            self.svc.hub.close(self.conn, CloseCode.RATE_LIMITED, "rate limited")
        return False

    # --- requests ------------------------------------------------------------------------

    def _received(self, data: bytes | str) -> None:
        """One client message: handled in order, by a reader task while there are any.

        With nothing queued ahead of it, it is checked at once, and a post starts at
        once: each hop through the reader task can wait behind a whole fan-out flush.
        """
        item: bytes | str | Request = data
        if self.reader is None:
            request = self._admit(data)
            if request is None:
                return
            if isinstance(request, PostRequest) and self._may_post():
                self._start_post(request)
                return
            item = request
        inbox = self.inbox
        if inbox is None:
            inbox = self.inbox = deque()
        inbox.append(item)
        if self.reader is None:
            self.reader = asyncio.get_running_loop().create_task(self._read())
        elif len(inbox) == INBOX_LIMIT:
            self.transport.pause_reading()

    async def _read(self) -> None:
        inbox = self.inbox
        assert inbox is not None
        try:
            while inbox and not self.conn.closed:
                if len(inbox) == INBOX_LIMIT:
                    self.transport.resume_reading()
                item = inbox.popleft()
                request = item if not isinstance(item, bytes | str) else self._admit(item)
                if request is None:
                    continue
                if not isinstance(request, PostRequest):
                    await self.run(request)
                    continue
                # Posts from one socket are handled concurrently (their acks carry ids),
                # so a client may keep several in flight; beyond that, reading waits
                # (backpressure).
                while self.posting and not self._may_post():
                    await asyncio.wait(self.posting, return_when=asyncio.FIRST_COMPLETED)
                self._start_post(request)
        except Exception:
            log.exception("websocket request failed")
            self.transport.abort()
        finally:
            self.reader = None
            if not inbox:
                self.inbox = None

    def _may_post(self) -> bool:
        return self.posting is None or len(self.posting) < MAX_POSTS_IN_FLIGHT

    def _start_post(self, request: PostRequest) -> None:
        if self.posting is None:
            self.posting = set()
        # The loop from a future the session holds: asyncio.ensure_future asks for the
        # running loop, a getpid system call on Python 3.11, on every post.
        task = self.done.get_loop().create_task(self.run(request))
        self.posting.add(task)
        task.add_done_callback(self.posting.discard)

    def _admit(self, data: bytes | str) -> Request | None:
        """The request in `data`, or None once refused (with an `error` frame)."""
        try:
            request = read_request(data)
        except ProtocolError as err:
            self.reply_error(err.request_id, err.code, err.message)
            now = time.monotonic()
            if self.malformed is None:
                self.malformed = deque()
            self.malformed.append(now)
            while self.malformed and self.malformed[0] < now - MALFORMED_WINDOW:
                self.malformed.popleft()
            if len(self.malformed) > MALFORMED_LIMIT:
                self.svc.hub.close(self.conn, CloseCode.PROTOCOL_ABUSE, "too many malformed frames")
            return None
        bucket = self.bucket
        if bucket is not None:
            wait = bucket.take()
            if wait > 0:
                self.limited_in_a_row += 1
                # Warn first; close only a client that keeps going far past the limit.
                if self.limited_in_a_row > 3 * bucket.burst:
                    self.svc.hub.close(self.conn, CloseCode.RATE_LIMITED, "rate limited")
                    return None
                retry = max(1, int(wait + 0.999))
                self.reply_error(request.id, "rate_limited", "too many messages",
                                 retry_after=retry)  # fmt: skip
                return None
            self.limited_in_a_row = 0
        return request

    def reply_error(self, request_id: Any, code: str, message: str, **extra: Any) -> None:
        self.svc.hub.send(self.conn, error_message(request_id, code, message, **extra))

    async def run(self, request: Request) -> None:
        """Handle one request; a refusal becomes its `error` frame (the socket's one
        error mapping: domain errors as they are, engine failures as
        `engine_unavailable`, like HTTP's 503)."""
        try:
            await self.dispatch(request)
        except ENGINE_ERRORS:
            self._refused(request, EngineUnavailable())
        except DomainError as err:
            self._refused(request, err)

    def _refused(self, request: Request, err: DomainError) -> None:
        extra: dict[str, Any] = {}
        if isinstance(err, RateLimited):
            extra["retry_after"] = max(1, int(err.retry_after + 0.999))
        if err.field is not None:
            extra["field"] = err.field
        self.reply_error(request.id, err.code, err.message, **extra)

    async def dispatch(self, request: Request) -> None:
        svc, conn = self.svc, self.conn
        if isinstance(request, PingRequest):
            svc.hub.send(conn, pong_message(request.id))
        elif isinstance(request, SubRequest):
            resolver = svc.topics
            asked = time.monotonic()
            channels, flt = await resolver.resolve(self.user, request.topic, request.filter)
            since = request.since
            replay = None if since is None else resolver.replay_filter(self.user, request.topic)
            await svc.hub.subscribe(conn, request.topic, channels, request_id=request.id,
                                    since=since, flt=flt, replay_filter=replay)  # fmt: skip
            why = svc.revoked_since(self.user.id, request.topic, asked)
            if why is not None:  # lost the right while this `sub` was being resolved
                svc.revoke(conn, request.topic, why)
        elif isinstance(request, UnsubRequest):
            svc.hub.unsubscribe(conn, request.topic)
            svc.hub.send(conn, ack_message(request.id, topic=request.topic))
        else:
            post = await self.post(self.user, request.body)
            svc.hub.send(conn, ack_message(request.id, post=post))

    # --- the hub's peer --------------------------------------------------------------------

    def __call__(self, code: int, reason: str) -> None:
        """The hub wrote the close frame (`code`): the peer has 2 s to answer with its
        own, then the connection is closed once all is sent, or cut off if what is
        sent stops moving (see `_close_when_sent`)."""
        if self.closing:
            return
        self.closing = True
        if self.transport.is_closing():
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        loop.call_later(CLOSE_GRACE, self._close_when_sent, -1, now + CLOSE_GRACE,
                        now + CLOSE_CEILING)  # fmt: skip

    def _close_when_sent(self, unsent_before: int, moved_at: float, give_up_at: float) -> None:
        """Close once the close frame has left; cut off (RST) only a connection where
        nothing left for CLOSE_STALL seconds, or that is still sending at CLOSE_CEILING.

        Why not a fixed cut-off: the close frame queues behind what the transport and
        the kernel hold (up to ~4 MiB of kernel buffer, autotuned), and a slow reader
        (a phone, or a client whose receive window is small) drains that at tens of
        KB/s; cut off at 3 s, it got a frame cut in two and EOF (1006) instead of the
        4008 it can resume from (measured). One timer per closing socket, re-armed
        each second: closing sockets are few.
        """
        if self.done.done():
            return
        transport = self.transport
        unsent = transport.get_write_buffer_size() + self._kernel_unsent()
        if unsent == 0:
            transport.close()  # all is out: FIN now (the peer had its grace)
            return
        loop = self.done.get_loop()
        now = loop.time()
        if unsent_before < 0 or unsent < unsent_before:
            moved_at = now
        if now - moved_at >= CLOSE_STALL or now >= give_up_at:
            transport.abort()
            return
        loop.call_later(1.0, self._close_when_sent, unsent, moved_at, give_up_at)

    def _kernel_unsent(self) -> int:
        """Bytes the kernel holds for the peer (not yet sent or not yet acknowledged);
        0 where unknown (TLS, or the transport closing: its fd may be closed)."""
        fd = self.conn.fd
        if fd < 0 or self.transport.is_closing():
            return 0
        try:
            return int(struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0])
        except OSError:
            return 0

    async def drained(self) -> None:
        await self.wait_drained()

    async def finish(self, hub: Hub) -> None:
        """The socket ended: the request being handled completes (as it did when the read
        loop awaited it); the messages queued behind it are dropped."""
        if self.inbox:
            self.inbox.clear()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
        if self.posting:
            await asyncio.gather(*self.posting, return_exceptions=True)
        hub.disconnect(self.conn)
        # The hub is done with the connection: drop the peer (a reference cycle).
        self.conn.closer = GONE
