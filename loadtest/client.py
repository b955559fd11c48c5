"""The lean websocket client: an asyncio Protocol over :mod:`loadtest.wsproto`.

No aiohttp on the receive path: bytes go from the transport into the frame parser,
and on a *counting* socket each event frame costs one regex search for the post marker
(:data:`loadtest.codec.MARKER_RE`), one :meth:`SeqTracker.add` and, for one frame in
``sample_every``, one histogram record. Everything else (acks, pongs, errors) is
decoded and dispatched to the request that waits for it.

Two dialects on the same core: :class:`EchoHubSocket` (``/ws``, JSON or msgpack
envelopes) and :class:`SocketIOSocket` (Engine.IO v4 / Socket.IO v5 over websocket).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from loadtest import wsproto
from loadtest.codec import (
    EIO_CLOSE,
    EIO_MESSAGE,
    EIO_OPEN,
    EIO_PING,
    EIO_PONG,
    MARKER_RE,
    SIO_ACK,
    SIO_CONNECT,
    SIO_CONNECT_ERROR,
    SIO_DISCONNECT,
    SIO_EVENT,
    EchoCodec,
    parse_sio,
    sio_connect,
    sio_event,
)
from loadtest.stats import LatencyHistogram, SeqTracker

_search = MARKER_RE.search

#: Distinct marker frames remembered per process. The server sends the same bytes to
#: every subscriber of a post, so one entry serves a whole audience; the cache is
#: cleared when full (a miss only costs a parse).
MARKER_CACHE_SIZE = 1 << 16


def count_delivery(c: Any, trackers: dict[int, SeqTracker], m: Any) -> bool:
    """Account one delivery whose marker matched `m`; False if its poster is not ours.

    The slow path, for frames the :class:`CountingParser` does not take (a socket
    that also tracks cursors); the in-order case is one comparison and one store.
    """
    tracker = trackers.get(int(m[1]))
    if tracker is None:
        c.foreign += 1
        return False
    seq = int(m[2])
    if seq == tracker.contiguous and not tracker.ahead:
        tracker.contiguous = seq + 1
    else:
        tracker.add(seq)
    c.delivered += 1
    c.sample_left -= 1
    if c.sample_left <= 0:
        c.sample_left = c.sample_every
        c.hist.record((c.now_ns - int(m[3])) // 1000)
    return True


class Marked:
    """One distinct marker frame (header included) as the server sent it.

    ``next`` is the frame that followed it on the last socket that read both: the
    server sends every subscriber the same frames in the same order, so it is the best
    guess for what a socket that just read this one reads next. A guess is taken only
    if the bytes at the read position are exactly ``frame``, so a wrong one costs a
    comparison, never a miscount.
    """

    __slots__ = ("frame", "next", "poster", "sent_ns", "seq", "size")

    def __init__(self, frame: bytes, poster: int, seq: int, sent_ns: int) -> None:
        self.frame = frame
        self.size = len(frame)
        self.poster = poster
        self.seq = seq
        self.sent_ns = sent_ns
        self.next: Marked | None = None


#: Only a ``post.created`` event is a delivery of a post: other frames may quote a
#: post's text (an ack, a ``like`` or ``mention`` notification carrying its context).
#: The type travels as these bytes in every codec (a JSON or msgpack string).
POST_EVENT = b"post.created"


def is_post_event(buf: bytes | bytearray, start: int, end: int) -> bool:
    return buf.find(POST_EVENT, start, end) >= 0


def marker_of(c: Counters, frame: bytes, start: int) -> Marked | None:
    """The :class:`Marked` for a whole data frame (payload from ``start``), parsed once
    per distinct frame; None for a frame that is no post event with a marker (replies,
    notifications, other events)."""
    m = _search(frame, start)
    if m is None or not is_post_event(frame, start, len(frame)):
        return None  # not cached: rare, and mostly unique (request ids)
    cache = c.markers
    if len(cache) >= MARKER_CACHE_SIZE:
        for old in cache.values():
            old.next = None  # no chain outlives the cache (sockets hold one node each)
        cache.clear()
        c.start.next = None
    node = cache[frame] = Marked(frame, int(m[1]), int(m[2]), int(m[3]))
    return node


class Counters:
    """Per-process counters shared by all sockets of a worker (the hot path's state)."""

    __slots__ = (
        "control_frames",
        "delivered",
        "foreign",
        "hist",
        "markers",
        "now_ns",
        "reads",
        "sample_every",
        "sample_left",
        "start",
    )

    def __init__(self, sample_every: int = 1) -> None:
        self.delivered = 0  # marker events counted on counting sockets
        self.foreign = 0  # marker events from a poster index we do not track
        self.control_frames = 0
        self.sample_every = max(1, sample_every)
        self.sample_left = 1
        self.now_ns = 0  # time.time_ns() of the read being processed
        self.reads = 0  # reads parsed by counting sockets (for frames per read)
        self.hist = LatencyHistogram()  # latency samples of the current interval
        self.markers: dict[bytes, Marked] = {}  # whole frame -> its marker
        # what a socket "read last" before its first marker frame (never in the cache)
        self.start = Marked(b"\xff\xff", -1, -1, 0)

    def take_hist(self) -> LatencyHistogram:
        hist, self.hist = self.hist, LatencyHistogram()
        return hist


class CountingParser(wsproto.FrameParser):
    """A :class:`~loadtest.wsproto.FrameParser` that counts marker events inline.

    With ``trackers`` set, a whole unfragmented data frame with a marker is counted
    in the parser's loop, without a call per frame. Finding its marker is cheap:

    - first guess, the frame that followed the previous one on another socket
      (:attr:`Marked.next`): one ``startswith`` at the read position, which also
      replaces reading the frame header;
    - else the header is parsed and the frame looked up in the process-wide frame →
      :class:`Marked` cache (bounded, cleared when full);
    - else (the first time the process sees this frame) a regex search and three
      ``int()``.

    Every frame is still counted on every socket and duplicates and gaps are seen:
    the shortcuts skip *parsing* only. Frames without a marker, fragmented ones and
    control frames take the general path (``on_data`` / ``on_control``); with
    ``trackers`` None the parser is the plain one.
    """

    __slots__ = ("counters", "last", "trackers")

    def __init__(
        self,
        on_data: wsproto.DataHandler,
        on_control: wsproto.ControlHandler,
        counters: Counters,
    ) -> None:
        super().__init__(on_data, on_control)
        self.counters = counters
        self.trackers: dict[int, SeqTracker] | None = None
        self.last = counters.start  # the marker frame this socket read last

    def feed(self, data: bytes) -> None:
        trackers = self.trackers
        if trackers is None:
            super().feed(data)
            return
        pend = self._pend
        if pend:
            pend += data
            if len(pend) < self._need:
                return
            data = bytes(pend)
            pend.clear()
        c = self.counters
        c.reads += 1
        last = self.last
        n = len(data)
        pos = 0
        need = 0
        frames = delivered = 0
        sample_left = c.sample_left
        try:
            while pos < n:
                node = last.next
                if node is not None and data.startswith(node.frame, pos):
                    pos += node.size  # the guess was right: no header to parse
                else:
                    b0 = data[pos]
                    if n - pos < 2:
                        need = 2
                        break
                    length = data[pos + 1]
                    if length < 126:
                        start = pos + 2
                    elif length == 126:
                        if n - pos < 4:
                            need = 4
                            break
                        length = (data[pos + 2] << 8) | data[pos + 3]
                        start = pos + 4
                    elif length == 127:
                        if n - pos < 10:
                            need = 10
                            break
                        length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                        start = pos + 10
                    else:
                        raise wsproto.ProtocolError("server frame is masked")
                    end = start + length
                    if end > n:
                        need = end - pos
                        break
                    if b0 != 0x81 and b0 != 0x82:
                        frames += 1
                        pos = end
                        self._other_frame(b0, b0 & 0x0F, data[start:end])
                        continue
                    whole = data[pos:end]
                    node = c.markers.get(whole) or marker_of(c, whole, start - pos)
                    if node is None:
                        frames += 1
                        pos = end
                        self.on_data(data, start, end, b0 & 0x0F)
                        continue
                    last.next = node  # what this socket read after `last`: the next guess
                    pos = end
                frames += 1
                last = node
                tracker = trackers.get(node.poster)
                if tracker is None:
                    c.foreign += 1
                    continue
                seq = node.seq
                if seq == tracker.contiguous and not tracker.ahead:
                    tracker.contiguous = seq + 1
                else:
                    tracker.add(seq)
                delivered += 1
                sample_left -= 1
                if sample_left <= 0:
                    sample_left = c.sample_every
                    c.hist.record((c.now_ns - node.sent_ns) // 1000)
        finally:
            self.last = last
            self.frames += frames
            c.delivered += delivered
            c.sample_left = sample_left
        if pos < n:
            self.keep(data, pos, need)


class RequestFailed(Exception):
    """The server answered a request with an error (``code`` is its error code)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


class LeanWebSocket(asyncio.Protocol):
    """A client websocket: handshake, masked sends, header-only frame parsing."""

    def __init__(
        self,
        host_header: str,
        path: str,
        counters: Counters,
        *,
        subprotocols: Sequence[str] = (),
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.key = wsproto.new_key()
        self._request = wsproto.handshake_request(
            host_header, path, self.key, subprotocols=subprotocols, headers=headers
        )
        self.counters = counters
        self.parser = CountingParser(self.on_message, self._on_control, counters)
        self.transport: asyncio.Transport | None = None
        self._hs_buf = bytearray()
        self._upgraded = False
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[wsproto.HandshakeResponse] = loop.create_future()
        self.closed: asyncio.Future[tuple[int, str]] = loop.create_future()
        self.close_code: int | None = None
        self.subprotocol: str | None = None
        self._trackers: dict[int, SeqTracker] | None = None
        self._track_cursor = False

    # --- counting --------------------------------------------------------------------

    @property
    def trackers(self) -> dict[int, SeqTracker] | None:
        """Poster index → :class:`SeqTracker`: set, it makes this a counting socket."""
        return self._trackers

    @trackers.setter
    def trackers(self, trackers: dict[int, SeqTracker] | None) -> None:
        self._trackers = trackers
        self._fast_path()

    @property
    def track_cursor(self) -> bool:
        """Also decode each counted event for its cursor (slow: for resume)."""
        return self._track_cursor

    @track_cursor.setter
    def track_cursor(self, on: bool) -> None:
        self._track_cursor = on
        self._fast_path()

    def _fast_path(self) -> None:
        # the parser counts inline unless every event must be decoded anyway
        self.parser.trackers = None if self._track_cursor else self._trackers

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transport is no asyncio.Transport subclass, but has its interface
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        try:
            if self._upgraded:
                self.counters.now_ns = time.time_ns()
                self.parser.feed(data)
                return
            self._hs_buf += data
            parsed = wsproto.parse_handshake_response(self._hs_buf, self.key)
            if parsed is None:
                return
            response, used = parsed
            rest = bytes(self._hs_buf[used:])
            self._hs_buf = bytearray()
            self._upgraded = True
            self.subprotocol = response.subprotocol
            if not self.opened.done():
                self.opened.set_result(response)
            self.on_open()
            if rest:
                self.counters.now_ns = time.time_ns()
                self.parser.feed(rest)
        except Exception as exc:  # a broken peer must not break the event loop
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during handshake"))
        if not self.closed.done():
            code = self.close_code if self.close_code is not None else 1006
            self.closed.set_result((code, str(exc) if exc else ""))
        self.on_closed()

    # --- hooks -----------------------------------------------------------------------

    def on_open(self) -> None:
        """Called once the upgrade succeeded."""

    def on_message(self, buf: bytes | bytearray, start: int, end: int, opcode: int) -> None:
        """A complete data message in ``buf[start:end]``."""

    def on_closed(self) -> None:
        """Called once when the TCP connection is gone."""

    # --- sending and closing ---------------------------------------------------------

    def send(self, payload: bytes, opcode: int = wsproto.OP_TEXT) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("socket closed")
        self.transport.write(wsproto.encode_frame(opcode, payload))

    def _on_control(self, opcode: int, payload: bytes) -> None:
        self.counters.control_frames += 1
        if opcode == wsproto.OP_PING:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(wsproto.encode_frame(wsproto.OP_PONG, payload))
        elif opcode == wsproto.OP_CLOSE:
            code, reason = wsproto.parse_close(payload)
            self.close_code = code
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(wsproto.encode_close(1000 if code == 1005 else code))
                self.transport.close()
            if not self.closed.done():
                self.closed.set_result((code, reason))

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self.close_code is None:
            self.close_code = 1002
        if self.transport is not None:
            self.transport.abort()

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (a crashed client)."""
        if self.transport is not None:
            self.transport.abort()

    async def close(self, code: int = 1000, within: float = 2.0) -> None:
        """Closing handshake, bounded by ``within``; aborts if the server is silent."""
        if self.transport is None:
            return
        if not self.transport.is_closing():
            self.transport.write(wsproto.encode_close(code))
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), within)
        except TimeoutError:
            pass
        finally:
            self.transport.abort() if not self.closed.done() else self.transport.close()

    @property
    def is_open(self) -> bool:
        return (
            self._upgraded
            and self.transport is not None
            and not self.transport.is_closing()
            and not self.closed.done()
        )


async def open_socket(
    factory: Callable[[], LeanWebSocket],
    host: str,
    port: int,
    *,
    source: str | None = None,
    within: float = 10.0,
) -> LeanWebSocket:
    """TCP connect (from ``source`` if given) and wait for the upgrade, within ``within``."""
    loop = asyncio.get_running_loop()
    local_addr = (source, 0) if source else None

    async def go() -> LeanWebSocket:
        _, proto = await loop.create_connection(factory, host, port, local_addr=local_addr)
        try:
            await proto.opened
        except BaseException:
            proto.abort()
            raise
        return proto

    return await asyncio.wait_for(go(), within)


class EchoHubSocket(LeanWebSocket):
    """An Echo Hub ``/ws`` client.

    ``trackers`` (poster index → :class:`SeqTracker`) makes it a counting socket:
    marker events go through the fast path. ``track_cursor`` additionally decodes
    each of them to remember the last cursor per topic (for resume).
    """

    def __init__(
        self,
        host_header: str,
        codec: EchoCodec,
        counters: Counters,
        *,
        token: str | None = None,
        path: str = "/ws",
    ) -> None:
        headers = [("Authorization", f"Bearer {token}")] if token else []
        super().__init__(
            host_header, path, counters, subprotocols=[codec.subprotocol], headers=headers
        )
        self.codec = codec
        self._ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.cursors: dict[str, str] = {}
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        self.errors: list[str] = []

    def on_message(self, buf: bytes | bytearray, start: int, end: int, opcode: int) -> None:
        trackers = self.trackers
        if trackers is not None:
            m = _search(buf, start, end)
            if m is not None and is_post_event(buf, start, end):
                if not count_delivery(self.counters, trackers, m):
                    return
                if self.track_cursor:
                    msg = self.codec.decode(bytes(buf[start:end]))
                    self.cursors[msg["topic"]] = msg["cursor"]
                return
        self._dispatch(bytes(buf[start:end]))

    def _dispatch(self, raw: bytes) -> None:
        try:
            msg = self.codec.decode(raw)
        except Exception:
            self.errors.append("undecodable frame")
            return
        if not isinstance(msg, dict):
            self.errors.append("frame is not an object")
            return
        op = msg.get("op")
        if op == "event":
            if "cursor" in msg and "topic" in msg:
                self.cursors[msg["topic"]] = msg["cursor"]
            if self.on_event is not None:
                self.on_event(msg)
            return
        rid = msg.get("id")
        fut = self.pending.pop(rid, None) if isinstance(rid, int) else None
        if op == "error":
            err = RequestFailed(str(msg.get("code")), str(msg.get("message", "")))
            if fut is not None and not fut.done():
                fut.set_exception(err)
            else:
                self.errors.append(str(err))
            return
        if fut is not None and not fut.done():
            fut.set_result(msg)

    def on_closed(self) -> None:
        exc = ConnectionError(f"socket closed ({self.close_code or 1006})")
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # nobody may be waiting any more: do not log it as lost
        self.pending.clear()

    def request_nowait(self, obj: dict[str, Any]) -> asyncio.Future[Any]:
        """Send ``obj`` with a fresh ``id``; the future resolves with the reply."""
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        try:
            self.send(self.codec.encode({**obj, "id": rid}), self.codec.opcode)
        except Exception:
            self.pending.pop(rid, None)
            raise
        return fut

    async def request(self, obj: dict[str, Any], within: float = 10.0) -> dict[str, Any]:
        result: dict[str, Any] = await asyncio.wait_for(self.request_nowait(obj), within)
        return result

    async def subscribe(
        self, topic: str, since: str | None = None, within: float = 10.0
    ) -> dict[str, Any]:
        req: dict[str, Any] = {"op": "sub", "topic": topic}
        if since is not None:
            req["since"] = since
        return await self.request(req, within)

    def post_nowait(self, text: str) -> asyncio.Future[Any]:
        return self.request_nowait({"op": "post", "text": text})

    async def ping(self, within: float = 10.0) -> dict[str, Any]:
        return await self.request({"op": "ping"}, within)


class SocketIOSocket(LeanWebSocket):
    """A Socket.IO v5 client over the Engine.IO v4 websocket transport."""

    def __init__(
        self,
        host_header: str,
        counters: Counters,
        *,
        auth: dict[str, Any] | None = None,
        path: str = "/socket.io/?EIO=4&transport=websocket",
    ) -> None:
        super().__init__(host_header, path, counters)
        self.auth = auth
        self._ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.cursors: dict[str, str] = {}
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        self.errors: list[str] = []
        self.ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.eio_open: dict[str, Any] = {}

    def on_message(self, buf: bytes | bytearray, start: int, end: int, opcode: int) -> None:
        trackers = self.trackers
        if trackers is not None:
            m = _search(buf, start, end)
            if m is not None and is_post_event(buf, start, end):
                count_delivery(self.counters, trackers, m)
                return
        if end - start == 1 and buf[start] == 0x32:  # "2": Engine.IO ping
            self.send(EIO_PONG.encode())
            return
        self._dispatch(bytes(buf[start:end]))

    def _dispatch(self, raw: bytes) -> None:
        try:
            pkt = parse_sio(raw)
        except Exception:
            self.errors.append("undecodable packet")
            return
        if pkt.eio == EIO_OPEN:
            self.eio_open = pkt.data or {}
            self.send(sio_connect(self.auth))
        elif pkt.eio == EIO_PING:
            self.send(EIO_PONG.encode())
        elif pkt.eio == EIO_CLOSE:
            self.abort()
        elif pkt.eio == EIO_MESSAGE:
            if pkt.sio == SIO_CONNECT:
                if not self.ready.done():
                    self.ready.set_result(pkt.data or {})
            elif pkt.sio == SIO_CONNECT_ERROR:
                if not self.ready.done():
                    self.ready.set_exception(RequestFailed("connect_error", str(pkt.data)))
            elif pkt.sio == SIO_ACK:
                fut = self.pending.pop(pkt.ack_id or -1, None)
                args = pkt.data or []
                if fut is not None and not fut.done():
                    res = args[0] if args else {}
                    if isinstance(res, dict) and res.get("error"):
                        fut.set_exception(RequestFailed(str(res["error"])))
                    else:
                        fut.set_result(res)
            elif pkt.sio == SIO_EVENT:
                args = pkt.data or []
                if len(args) >= 2 and isinstance(args[1], dict):
                    msg = args[1]
                    if "cursor" in msg and "topic" in msg:
                        self.cursors[msg["topic"]] = msg["cursor"]
                    if self.on_event is not None:
                        self.on_event(msg)
            elif pkt.sio == SIO_DISCONNECT:
                self.abort()

    def on_closed(self) -> None:
        exc = ConnectionError(f"socket closed ({self.close_code or 1006})")
        if not self.ready.done():
            self.ready.set_exception(exc)
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # nobody may be waiting any more: do not log it as lost
        self.pending.clear()

    def request_nowait(self, event: str, data: Any) -> asyncio.Future[Any]:
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        try:
            self.send(sio_event(event, data, rid))
        except Exception:
            self.pending.pop(rid, None)
            raise
        return fut

    async def request(self, event: str, data: Any, within: float = 10.0) -> dict[str, Any]:
        result: dict[str, Any] = await asyncio.wait_for(self.request_nowait(event, data), within)
        return result

    async def subscribe(
        self, topic: str, since: str | None = None, within: float = 10.0
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"topic": topic}
        if since is not None:
            data["since"] = since
        return await self.request("sub", data, within)

    def post_nowait(self, text: str) -> asyncio.Future[Any]:
        return self.request_nowait("post", {"text": text})

    async def ping(self, within: float = 10.0) -> dict[str, Any]:
        return await self.request("ping", {}, within)


async def connect_echohub(
    host: str,
    port: int,
    codec: EchoCodec,
    counters: Counters,
    *,
    token: str | None,
    source: str | None = None,
    within: float = 10.0,
) -> EchoHubSocket:
    sock = await open_socket(
        lambda: EchoHubSocket(f"{host}:{port}", codec, counters, token=token),
        host,
        port,
        source=source,
        within=within,
    )
    assert isinstance(sock, EchoHubSocket)
    return sock


async def connect_socketio(
    host: str,
    port: int,
    counters: Counters,
    *,
    auth: dict[str, Any] | None = None,
    source: str | None = None,
    within: float = 10.0,
) -> SocketIOSocket:
    deadline = time.monotonic() + within
    sock = await open_socket(
        lambda: SocketIOSocket(f"{host}:{port}", counters, auth=auth),
        host,
        port,
        source=source,
        within=within,
    )
    assert isinstance(sock, SocketIOSocket)
    try:
        await asyncio.wait_for(asyncio.shield(sock.ready), max(0.1, deadline - time.monotonic()))
    except BaseException:
        sock.abort()
        raise
    return sock


async def close_all(socks: Sequence[LeanWebSocket], within: float = 3.0) -> None:
    """Close many sockets concurrently, bounded by ``within`` overall."""
    if not socks:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(s.close(within=within) for s in socks), return_exceptions=True),
            within + 1,
        )
    for s in socks:
        s.abort()
