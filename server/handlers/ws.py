"""The websocket endpoint (SPEC section 6): upgrade checks, then a loop of requests.

The one place a refusal becomes an `error` frame. Every frame to the client goes through
the hub, so acks, errors and events reach it in the order they were produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from aiohttp import WSMsgType, web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.domain.errors import DomainError, RateLimited
from server.handlers.common import ENGINE_ERRORS, engine_error_response, plain_error, token_of
from server.hub import Transport
from server.protocol import (
    SUBPROTOCOLS,
    CloseCode,
    ProtocolError,
    Request,
    codec_for,
    error_message,
    read_request,
)
from server.services.container import SERVICES, Services
from server.settings import RateLimit
from server.store.accounts import session_key_of

log = logging.getLogger(__name__)

MALFORMED_LIMIT = 10
MALFORMED_WINDOW = 10.0
MAX_POSTS_IN_FLIGHT = 16
SOCKETS = web.AppKey("sockets", set)  # type: ignore[type-arg]


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
    refusal, user, session_key = await admit(request, svc)
    if refusal is not None:
        return refusal
    assert user is not None and session_key is not None

    ws = web.WebSocketResponse(
        protocols=SUBPROTOCOLS,
        # The hub pings idle sockets in one sweep (Hub.heartbeat) instead of a timer per
        # socket; pings and pongs come through here so that any frame counts as life.
        autoping=False,
        max_msg_size=svc.settings.max_frame_size,
        compress=False,
        timeout=2.0,  # how long a close waits for the peer's close frame
    )
    await ws.prepare(request)
    # The 101 response has been written: its headers (the handshake's, the worker
    # header, Date, Server) are never read again. Emptying them frees ~1 KB per socket.
    ws.headers.clear()
    # Everything a socket keeps lives in its _Session (slots) and hub Connection: no
    # closure, task or set per socket, and few locals in this long-lived frame.
    transport = request.transport
    assert transport is not None
    session = _Session(svc, ws, transport, user, session_key)
    conn = session.conn
    sockets: set[web.WebSocketResponse] = request.app[SOCKETS]
    sockets.add(ws)
    try:
        while True:
            msg = await ws.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                conn.idle = 0
                await session.handle(msg.data)
                if conn.closed:
                    break
            elif kind is WSMsgType.PING:
                conn.idle = 0
                await ws.pong(msg.data)
            elif kind is WSMsgType.PONG:
                conn.idle = 0
            else:  # CLOSE, CLOSING, CLOSED or ERROR
                break
    finally:
        await session.finish()
        sockets.discard(ws)
    return ws


class _Session:
    """One socket: its hub connection, request loop state, malformed-frame window and
    rate bucket.

    Idle sockets are the common case, so what only misbehaving, posting or closing
    clients need is allocated on first use (an empty deque alone costs ~600 bytes).
    """

    __slots__ = ("bucket", "closing", "conn", "limited_in_a_row", "malformed", "posting",
                 "svc", "user", "ws")  # fmt: skip

    def __init__(
        self, svc: Services, ws: web.WebSocketResponse, transport: Transport, user: Any, key: str
    ) -> None:
        self.svc = svc
        self.ws = ws
        self.user = user
        self.malformed: deque[float] | None = None
        limit = svc.settings.rate_limits.get("socket")
        self.bucket = _Bucket(limit) if limit else None
        self.limited_in_a_row = 0
        self.posting: set[asyncio.Future[None]] | None = None
        self.closing: asyncio.Task[Any] | None = None
        codec = codec_for(ws.ws_protocol)
        # The session is the connection's closer itself (__call__): no bound method.
        self.conn = svc.hub.connect(user.id, key, codec, transport, self)

    def __call__(self, code: int, reason: str) -> None:
        """The hub's closer: a close frame with `code`, then the peer has 3 s to answer."""
        if self.ws.closed or self.closing is not None:
            return
        loop = asyncio.get_running_loop()
        self.closing = loop.create_task(self.ws.close(code=code, message=reason.encode()))
        # A reader that never answers the close frame is cut off.
        loop.call_later(3.0, self.conn.transport.abort)

    async def finish(self) -> None:
        if self.posting:
            await asyncio.gather(*self.posting, return_exceptions=True)
        conn = self.conn
        self.svc.hub.disconnect(conn)
        # The hub is done with the connection: drop the closer (a reference cycle).
        conn.closer = _closed
        if self.closing is not None:
            # Let a close the hub asked for finish with its own code.
            await asyncio.gather(self.closing, return_exceptions=True)

    def reply_error(self, request_id: Any, code: str, message: str, **extra: Any) -> None:
        self.svc.hub.send(self.conn, error_message(request_id, code, message, **extra))

    async def handle(self, data: bytes | str) -> None:
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
            return
        if self.bucket is not None:
            wait = self.bucket.take()
            if wait > 0:
                self.limited_in_a_row += 1
                # Warn first; close only a client that keeps going far past the limit.
                if self.limited_in_a_row > 3 * self.bucket.burst:
                    hub.close(self.conn, CloseCode.RATE_LIMITED, "rate limited")
                    return
                retry = max(1, int(wait + 0.999))
                self.reply_error(request.id, "rate_limited", "too many messages", retry_after=retry)
                return
            self.limited_in_a_row = 0
        if request.op == "post":
            # Posts from one socket are handled concurrently (their acks carry ids), so a
            # client may keep several in flight; beyond that, reading waits (backpressure).
            if self.posting is None:
                self.posting = set()
            if len(self.posting) >= MAX_POSTS_IN_FLIGHT:
                await asyncio.wait(self.posting, return_when=asyncio.FIRST_COMPLETED)
            task = asyncio.ensure_future(self.run(request))
            self.posting.add(task)
            task.add_done_callback(self.posting.discard)
            return
        await self.run(request)

    async def run(self, request: Request) -> None:
        try:
            await self.dispatch(request)
        except DomainError as err:
            extra = {}
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
            channels, flt = await resolver.resolve(self.user, request.topic, request.filter)
            await svc.hub.subscribe(
                conn, request.topic, channels, request_id=request.id, since=request.since, flt=flt
            )
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
    sockets = list(app[SOCKETS])
    if sockets:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(
                    *(ws.close(code=CloseCode.GOING_AWAY, message=b"server shutting down")
                      for ws in sockets),
                    return_exceptions=True,
                ),
                3.0,
            )  # fmt: skip
