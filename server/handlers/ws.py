"""The websocket endpoint (SPEC section 6), the aiohttp adapter: upgrade checks (origin,
session), the 101, then the socket is handed to its `SocketSession`.

After the handshake the client's bytes reach the session through aiohttp's payload
parser hook (`protocol.set_parser`, the one aiohttp's own WebSocketResponse uses), on
the connection aiohttp accepted, without a WebSocketResponse: that costs, per socket, a
reader, a data queue with its deque, a writer with its lock, and the coroutine frames
of a receive() pending for the socket's whole life (~3 KB). The hook is undocumented,
so the real-socket tests guard it on every upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any

from aiohttp import web

from server.handlers.common import ENGINE_ERRORS, engine_error_response, plain_error, token_of
from server.handlers.socket_session import SocketSession
from server.hub import TRANSPORT_BUDGET
from server.protocol import CloseCode, HandshakeError, codec_for, handshake_answer
from server.services.container import FEATURES, SERVICES, Services
from server.sockets import plain_fd

SOCKETS = web.AppKey("sockets", set)
# The kernel's send buffer per websocket (Linux doubles it: 256 KiB in all). Autotuned,
# it grows to 4 MiB, which a slow reader drains at tens of KB/s: the close frame behind
# it then waits minutes, and each hostile socket pins that much kernel memory.
SOCKET_SEND_BUFFER = 128 * 1024


def origin_allowed(request: web.Request, origin: str, allowed: tuple[str, ...]) -> bool:
    origin = origin.rstrip("/").lower()
    if allowed:
        return origin in {a.lower() for a in allowed}
    return origin == f"{request.scheme}://{request.host}".lower()


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
    return None, user, svc.accounts.session_key(token)


async def websocket(request: web.Request) -> web.StreamResponse:
    svc: Services = request.app[SERVICES]
    started = time.monotonic()
    refusal, user, session_key = await admit(request, svc)
    if refusal is not None:
        return refusal
    assert user is not None and session_key is not None
    try:
        headers, subprotocol = handshake_answer(request.headers)
    except HandshakeError as err:
        raise web.HTTPBadRequest(text=str(err)) from None
    response = _Upgraded(status=101, headers=headers)
    response.force_close()  # no HTTP after this, as with aiohttp's WebSocketResponse
    await response.prepare(request)
    # The 101 has been written: its headers are never read again (~1 KB per socket).
    response.headers.clear()
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("connection lost during the upgrade")
    # The hub holds back what goes beyond this, and learns of the drain from aiohttp's
    # protocol (paused above the high-water mark, resumed below the low one).
    transport.set_write_buffer_limits(high=TRANSPORT_BUDGET)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_SEND_BUFFER)
    protocol = request.protocol
    session = SocketSession(svc, request.app[FEATURES].post_op, transport,
                            protocol._drain_helper, codec_for(subprotocol), user, session_key,
                            plain_fd(transport))  # fmt: skip
    protocol.keep_alive(False)
    protocol.set_parser(session)  # type: ignore[arg-type]
    sockets: set[SocketSession] = request.app[SOCKETS]
    sockets.add(session)
    ended = svc.ended_since(user.id, session_key, started)
    if ended is not None:  # logged out or suspended while this socket was upgrading
        svc.hub.close(session.conn, *ended)
    try:
        # Frames arrive through SocketSession.feed_data; this frame only keeps aiohttp
        # from closing the connection until the socket ends (connection lost: feed_eof).
        await session.done
    finally:
        sockets.discard(session)
        await session.finish(svc.hub)
    return response


class _Upgraded(web.StreamResponse):
    """The 101 answer. What follows on the connection is websocket frames, written by
    the hub and the session, so there is no HTTP body to end."""

    async def write_eof(self, data: bytes = b"") -> None:
        return None


async def close_all_sockets(app: web.Application) -> None:
    """On shutdown: 1001 to everyone, so clients move to another process and resume."""
    svc = app[SERVICES]
    svc.hub.close_all(CloseCode.GOING_AWAY, "server shutting down")
    sockets: set[SocketSession] = app[SOCKETS]
    if sockets:
        # Each got its close frame from the hub; wait (a little) for them to end.
        with contextlib.suppress(Exception):
            await asyncio.wait([session.done for session in sockets], timeout=3.0)
