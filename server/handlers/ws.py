"""The websocket endpoint (SPEC section 6): upgrade checks, then a loop of requests.

The one place a refusal becomes an `error` frame. Every frame to the client goes through
the hub, so acks, errors and events reach it in the order they were produced (pongs and
close frames excepted). After the handshake the client's frames are read here (see
_Session), on the connection aiohttp accepted, without a WebSocketResponse.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import time
from collections import deque
from typing import Any

from aiohttp import hdrs, web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.domain.errors import DomainError, RateLimited
from server.handlers.common import ENGINE_ERRORS, engine_error_response, plain_error, token_of
from server.protocol import (
    INVALID_TEXT,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    PROTOCOL_ERROR,
    SUBPROTOCOLS,
    CloseCode,
    Codec,
    FrameError,
    ProtocolError,
    Request,
    close_frame,
    codec_for,
    control_frame,
    error_message,
    read_close,
    read_frames,
    read_request,
)
from server.services.container import SERVICES, Services
from server.settings import RateLimit
from server.store.accounts import session_key_of
from server.store.resp import plain_fd

log = logging.getLogger(__name__)

MALFORMED_LIMIT = 10
MALFORMED_WINDOW = 10.0
MAX_POSTS_IN_FLIGHT = 16
SOCKETS = web.AppKey("sockets", set)


def origin_allowed(request: web.Request, origin: str, allowed: tuple[str, ...]) -> bool:
    origin = origin.rstrip("/").lower()
    if allowed:
        return origin in {a.lower() for a in allowed}
    return origin == f"{request.scheme}://{request.host}".lower()


class _Bucket:
    """A local token bucket: socket messages are limited per connection."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, limit: RateLimit) -> None:
        self.rate = limit.per_second
        self.burst = float(limit.burst)
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def take(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


async def admit(
    request: web.Request, svc: Services
) -> tuple[web.Response, None, None] | tuple[None, Any, str]:
    """The checks before the upgrade: (refusal to send, None, None) or (None, member,
    session key).

    Its own coroutine so that the token and headers it reads are not kept alive by the
    websocket handler's frame, which lives as long as the socket.
    """
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(request, origin, svc.settings.allowed_origins):
        return plain_error(403, "forbidden_origin", "this origin may not open a socket"), None, None
    token = token_of(request)
    try:
        user = await svc.accounts.authenticate(token)
    except ENGINE_ERRORS as exc:
        # error_middleware leaves this endpoint alone (see there).
        return engine_error_response(exc), None, None
    if user is None or token is None:
        return plain_error(401, "unauthenticated", "sign in first"), None, None
    return None, user, session_key_of(token)


async def websocket(request: web.Request) -> web.StreamResponse:
    svc: Services = request.app[SERVICES]
    started = time.monotonic()
    refusal, user, session_key = await admit(request, svc)
    if refusal is not None:
        return refusal
    assert user is not None and session_key is not None
    headers, subprotocol = handshake(request)
    response = _Upgraded(status=101, headers=headers)
    response.force_close()  # no HTTP after this, as with aiohttp's WebSocketResponse
    await response.prepare(request)
    # The 101 has been written: its headers are never read again (~1 KB per socket).
    response.headers.clear()
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("connection lost during the upgrade")
    session = _Session(svc, request, transport, codec_for(subprotocol), user, session_key)
    sockets: set[_Session] = request.app[SOCKETS]
    sockets.add(session)
    ended = svc.ended_since(user.id, session_key, started)
    if ended is not None:  # logged out or suspended while this socket was upgrading
        svc.hub.close(session.conn, *ended)
    try:
        # Frames arrive through _Session.feed_data; this frame only keeps aiohttp from
        # closing the connection until the socket ends (connection lost: feed_eof).
        await session.done
    finally:
        sockets.discard(session)
        await session.finish()
    return response


_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def handshake(request: web.Request) -> tuple[dict[str, str], str | None]:
    """The opening handshake (RFC 6455 section 4.2): the 101's headers and the chosen
    subprotocol, or 400 with the same checks and words as aiohttp's WebSocketResponse.
    """
    headers = request.headers
    if headers.get(hdrs.UPGRADE, "").lower().strip() != "websocket":
        raise web.HTTPBadRequest(
            text=f"No WebSocket UPGRADE hdr: {headers.get(hdrs.UPGRADE)}\n"
            ' Can "Upgrade" only to "WebSocket".'
        )
    tokens = {t.strip().lower() for t in headers.get(hdrs.CONNECTION, "").split(",")}
    if "upgrade" not in tokens:
        raise web.HTTPBadRequest(text=f"No CONNECTION upgrade hdr: {headers.get(hdrs.CONNECTION)}")
    subprotocol = None
    offered = [p.strip() for p in headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, "").split(",")]
    for proto in offered:
        if proto in SUBPROTOCOLS:
            subprotocol = proto
            break
    version = headers.get(hdrs.SEC_WEBSOCKET_VERSION, "")
    if version not in ("13", "8", "7"):
        raise web.HTTPBadRequest(text=f"Unsupported version: {version}")
    key = headers.get(hdrs.SEC_WEBSOCKET_KEY)
    try:
        if not key or len(base64.b64decode(key)) != 16:
            raise web.HTTPBadRequest(text=f"Handshake error: {key!r}")
    except binascii.Error:
        raise web.HTTPBadRequest(text=f"Handshake error: {key!r}") from None
    accept = base64.b64encode(hashlib.sha1(key.encode() + _WS_GUID).digest()).decode()
    answer = {"Upgrade": "websocket", "Connection": "upgrade", "Sec-WebSocket-Accept": accept}
    if subprotocol:
        answer["Sec-WebSocket-Protocol"] = subprotocol
    return answer, subprotocol


class _Upgraded(web.StreamResponse):
    """The 101 answer. What follows on the connection is websocket frames, written by
    the hub and the session, so there is no HTTP body to end."""

    async def write_eof(self, data: bytes = b"") -> None:
        return None


# Client messages waiting for the session's reader beyond which the socket is paused.
INBOX_LIMIT = 32


class _Session:
    """One socket after the upgrade: its websocket reader, hub connection, request loop
    state, malformed-frame window and rate bucket.

    The frames are read here, from the bytes aiohttp's connection hands to its payload
    parser (`feed_data`, `feed_eof`: the hook aiohttp's own WebSocketResponse uses),
    rather than through a WebSocketResponse: that costs, per socket, a reader, a data
    queue with its deque, a writer with its lock, and the coroutine frames of a
    receive() pending for the socket's whole life (~3 KB). Frames to the client are
    written to the transport: by the hub, and here for pongs and close frames.

    Idle sockets are the common case, so what only talking, misbehaving, posting or
    closing clients need is allocated on first use (an empty deque alone costs ~600
    bytes): the partial frame, the message being reassembled, the inbox and its reader
    task, the posts in flight, the malformed-frame window.
    """

    __slots__ = ("bucket", "buf", "closing", "conn", "done", "fragments", "inbox",
                 "limited_in_a_row", "malformed", "max_size", "posting", "reader", "svc",
                 "transport", "user")  # fmt: skip

    def __init__(
        self,
        svc: Services,
        request: web.Request,
        transport: asyncio.Transport,
        codec: Codec,
        user: Any,
        key: str,
    ) -> None:
        self.svc = svc
        self.transport = transport
        self.user = user
        self.max_size = svc.settings.max_frame_size
        self.malformed: deque[float] | None = None
        limit = svc.settings.rate_limits.get("socket")
        self.bucket = _Bucket(limit) if limit else None
        self.limited_in_a_row = 0
        self.posting: set[asyncio.Future[None]] | None = None
        self.closing = False
        self.buf: bytearray | None = None
        self.fragments: tuple[int, bytearray] | None = None
        self.inbox: deque[bytes | str | Request] | None = None
        self.reader: asyncio.Task[None] | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # The session is the connection's closer itself (__call__): no bound method.
        self.conn = svc.hub.connect(user.id, key, codec, transport, self, plain_fd(transport))
        protocol = request.protocol
        protocol.keep_alive(False)
        protocol.set_parser(self)  # type: ignore[arg-type]

    # --- aiohttp's payload parser interface ----------------------------------------------

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        try:
            self._feed(data)
        except FrameError as err:
            self._fail(err.code)
        except Exception:
            log.exception("websocket reader failed")
            self.transport.abort()
        return False, b""

    def feed_eof(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    # --- reading -----------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        buf = self.buf
        if buf:
            # A frame was incomplete: gather in a bytearray (linear however the bytes
            # trickle in), and forget it once nothing is pending.
            buf += data
            frames, used = read_frames(buf, self.max_size)
            del buf[:used]
            if not buf:
                self.buf = None
        else:
            frames, used = read_frames(data, self.max_size)
            if used < len(data):
                self.buf = bytearray(data[used:])
        conn = self.conn
        for fin, opcode, payload in frames:
            conn.idle = 0
            if opcode >= OP_CLOSE:
                self._control(opcode, payload)
                continue
            if self.closing:
                continue  # a close frame went out: data is no longer read
            if opcode == OP_CONTINUATION:
                if self.fragments is None:
                    raise FrameError(PROTOCOL_ERROR, "continuation of no message")
                opcode, parts = self.fragments
                parts += payload
                if len(parts) > self.max_size:
                    raise FrameError(CloseCode.TOO_BIG, "message exceeds the frame limit")
                if not fin:
                    continue
                self.fragments = None
                payload = bytes(parts)
            elif self.fragments is not None:
                raise FrameError(PROTOCOL_ERROR, "a new message inside a fragmented one")
            elif not fin:
                self.fragments = (opcode, bytearray(payload))
                continue
            if opcode == OP_TEXT:
                try:
                    self._received(payload.decode())
                except UnicodeDecodeError:
                    raise FrameError(INVALID_TEXT, "text frame is not UTF-8") from None
            else:
                self._received(payload)

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING:
            self.svc.hub.write_control(self.conn, control_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            read_close(payload)
            # The peer closes: what the hub has queued, our close frame (1000, as aiohttp
            # answers), then the connection ends.
            self.svc.hub.close(self.conn, 1000)
            self.closing = True
            self.transport.close()

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
            if request.op == "post" and self._may_post():
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
                request = item if isinstance(item, Request) else self._admit(item)
                if request is None:
                    continue
                if request.op != "post":
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

    def _start_post(self, request: Request) -> None:
        if self.posting is None:
            self.posting = set()
        # The loop from a future the session holds: asyncio.ensure_future asks for the
        # running loop, a getpid system call on Python 3.11, on every post.
        task = self.done.get_loop().create_task(self.run(request))
        self.posting.add(task)
        task.add_done_callback(self.posting.discard)

    # --- closing -----------------------------------------------------------------------

    def _fail(self, code: int) -> None:
        """A frame broke the protocol: close with `code` (1002, 1007 or 1009)."""
        self.buf = None
        self.fragments = None
        self.svc.hub.close(self.conn, code)
        self.closing = True

    def __call__(self, code: int, reason: str) -> None:
        """The hub's closer: a close frame with `code`; the peer has 2 s to answer with
        its own before the connection is closed, 3 s before it is cut off."""
        if self.closing:
            return
        self.closing = True
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(close_frame(code, reason))
        loop = asyncio.get_running_loop()
        loop.call_later(2.0, transport.close)
        loop.call_later(3.0, transport.abort)

    async def finish(self) -> None:
        # The request being handled completes (as it did when the read loop awaited
        # it); the messages queued behind it are dropped.
        if self.inbox:
            self.inbox.clear()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
        if self.posting:
            await asyncio.gather(*self.posting, return_exceptions=True)
        conn = self.conn
        self.svc.hub.disconnect(conn)
        # The hub is done with the connection: drop the closer (a reference cycle).
        conn.closer = _closed

    def reply_error(self, request_id: Any, code: str, message: str, **extra: Any) -> None:
        self.svc.hub.send(self.conn, error_message(request_id, code, message, **extra))

    def _admit(self, data: bytes | str) -> Request | None:
        """The request in `data`, or None once refused (with an `error` frame)."""
        hub = self.svc.hub
        try:
            request = read_request(self.conn.codec, data)
        except ProtocolError as err:
            self.reply_error(err.request_id, err.code, err.message)
            now = time.monotonic()
            if self.malformed is None:
                self.malformed = deque()
            self.malformed.append(now)
            while self.malformed and self.malformed[0] < now - MALFORMED_WINDOW:
                self.malformed.popleft()
            if len(self.malformed) > MALFORMED_LIMIT:
                hub.close(self.conn, CloseCode.PROTOCOL_ABUSE, "too many malformed frames")
            return None
        if self.bucket is not None:
            wait = self.bucket.take()
            if wait > 0:
                self.limited_in_a_row += 1
                # Warn first; close only a client that keeps going far past the limit.
                if self.limited_in_a_row > 3 * self.bucket.burst:
                    hub.close(self.conn, CloseCode.RATE_LIMITED, "rate limited")
                    return None
                retry = max(1, int(wait + 0.999))
                self.reply_error(request.id, "rate_limited", "too many messages", retry_after=retry)
                return None
            self.limited_in_a_row = 0
        return request

    async def run(self, request: Request) -> None:
        try:
            await self.dispatch(request)
        except DomainError as err:
            extra: dict[str, Any] = {}
            if isinstance(err, RateLimited):
                extra["retry_after"] = max(1, int(err.retry_after + 0.999))
            if err.field is not None:
                extra["field"] = err.field
            self.reply_error(request.id, err.code, err.message, **extra)
        except (TimeoutError, RedisConnectionError, RedisTimeoutError, ConnectionError):
            self.reply_error(request.id, "engine_unavailable", "the storage engine is unavailable")

    async def dispatch(self, request: Request) -> None:
        svc, conn = self.svc, self.conn
        if request.op == "ping":
            svc.hub.send(conn, {"op": "pong", "id": request.id})
        elif request.op == "sub":
            assert request.topic is not None
            resolver = svc.extra["topics"]
            asked = time.monotonic()
            channels, flt = await resolver.resolve(self.user, request.topic, request.filter)
            since = request.since
            replay = None if since is None else resolver.replay_filter(self.user, request.topic)
            await svc.hub.subscribe(conn, request.topic, channels, request_id=request.id,
                                    since=since, flt=flt, replay_filter=replay)  # fmt: skip
            why = svc.revoked_since(self.user.id, request.topic, asked)
            if why is not None:  # lost the right while this `sub` was being resolved
                svc.revoke(conn, request.topic, why)
        elif request.op == "unsub":
            assert request.topic is not None
            svc.hub.unsubscribe(conn, request.topic)
            svc.hub.send(conn, {"op": "ack", "id": request.id, "topic": request.topic})
        elif request.op == "post":
            poster = svc.extra.get("post_op")
            if poster is None:
                raise DomainError("unsupported", "posting is not available")
            post = await poster(self.user, request.body)
            svc.hub.send(conn, {"op": "ack", "id": request.id, "post": post})


def _closed(code: int, reason: str) -> None:
    """The closer of a connection already gone from the hub."""


async def close_all_sockets(app: web.Application) -> None:
    """On shutdown: 1001 to everyone, so clients move to another process and resume."""
    svc = app[SERVICES]
    svc.hub.close_all(CloseCode.GOING_AWAY, "server shutting down")
    sockets: set[_Session] = app[SOCKETS]
    if sockets:
        # Each got its close frame from the hub; wait (a little) for them to end.
        with contextlib.suppress(Exception):
            await asyncio.wait([session.done for session in sockets], timeout=3.0)
