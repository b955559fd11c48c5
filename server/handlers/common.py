"""What every handler shares: JSON in and out, the error shape, the signed-in member."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.domain.errors import (
    DomainError,
    EngineUnavailable,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
)
from server.protocol import HandshakeError, handshake_answer
from server.services.common import User

log = logging.getLogger(__name__)

SESSION_COOKIE = "echohub_session"
USER_KEY = web.RequestKey("user", User)
TOKEN_KEY = web.RequestKey("token", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200, **kwargs: Any) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", **kwargs
    )


def error_response(err: DomainError) -> web.Response:
    headers = {}
    if isinstance(err, RateLimited):
        headers["Retry-After"] = str(max(1, int(err.retry_after + 0.999)))
    return json_response({"error": err.to_dict()}, status=err.status, headers=headers)


def plain_error(status: int, code: str, message: str) -> web.Response:
    return json_response({"error": {"code": code, "message": message}}, status=status)


_HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large"}  # fmt: skip


ENGINE_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionRefusedError)

# The websocket endpoint: its handler runs for the socket's whole life.
WS_PATH = "/ws"


@web.middleware
def error_middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """The one place a refusal becomes the spec's error shape over HTTP.

    A plain function, not a coroutine: the websocket endpoint answers its own refusals
    before the upgrade (engine_error_response), so an upgrade request is handed on
    without a coroutine frame of this middleware kept alive for as long as each socket
    stays open.
    """
    if request.path == WS_PATH and upgradable(request.headers):
        return handler(request)
    return _errors_as_responses(request, handler)


def upgradable(headers: Mapping[str, str]) -> bool:
    """Does this request ask for a websocket correctly? Only such a request becomes a
    socket; any other request to /ws is refused here, in the error shape."""
    try:
        handshake_answer(headers)
    except HandshakeError:
        return False
    return True


async def _errors_as_responses(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as err:
        return error_response(err)
    except ENGINE_ERRORS as exc:
        return engine_error_response(exc)
    except web.HTTPRequestEntityTooLarge:
        return error_response(payload_too_large())
    except web.HTTPException as exc:
        # aiohttp's own refusals (no such route or file, a method a route lacks, the
        # websocket handshake), on every path: its answers are text/plain.
        if exc.status < 400:
            raise
        return _http_refusal(request, exc)
    except HttpProcessingError as exc:
        # A body aiohttp cannot parse as it is read (a multipart part with a broken
        # header, a bad chunk): the client's bytes, so 400, never a 500. Found by
        # schemathesis on POST /api/media.
        log.info("unreadable body: %s %s (%s)", request.method, request.path, type(exc).__name__)
        return plain_error(400, "invalid_body", "the request body could not be read")
    except ConnectionError as exc:
        # The client hung up while its request was read (a streamed upload): one line.
        log.info("client went away: %s %s (%s)", request.method, request.path, exc)
        return plain_error(400, "client_gone", "the connection was closed")
    except Exception:
        # A bug of ours: logged with its traceback once, answered in the error shape
        # (aiohttp's own 500 is a text/plain page no client can read).
        log.exception("unhandled error: %s %s", request.method, request.path)
        return plain_error(500, "internal_error", "something went wrong on our side")


def _http_refusal(request: web.Request, exc: web.HTTPException) -> web.Response:
    if request.path == WS_PATH and exc.status == 400:
        # The handshake's own message quotes the client's header values.
        code, message = "websocket_upgrade_required", "this address takes a websocket upgrade"
    else:
        code, message = _HTTP_CODES.get(exc.status, "http_error"), exc.reason
    response = plain_error(exc.status, code, message)
    if "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


def engine_error_response(exc: BaseException) -> web.Response:
    log.warning("engine unavailable: %s", exc)
    return error_response(EngineUnavailable())


async def read_json(request: web.Request) -> Any:
    """The whole JSON body (aiohttp caps it at client_max_size: 413 beyond)."""
    limit = request.app[MAX_BODY]
    if request.content_length is not None and request.content_length > limit:
        raise payload_too_large()
    try:
        # read() waits for the whole body, however many segments it arrives in.
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise payload_too_large() from None
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise DomainError("invalid_json", "request body is not valid JSON") from None


def payload_too_large() -> DomainError:
    return PayloadTooLarge("payload_too_large", "request body is larger than 64 KiB")


MAX_BODY = web.AppKey("max_body", int)


def token_of(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.cookies.get(SESSION_COOKIE)


def current_user(request: web.Request) -> User:
    # aiohttp types `request[USER_KEY]` by its key, but `get` is MutableMapping's: Any.
    user: User | None = request.get(USER_KEY)
    if user is None:
        raise Unauthenticated("unauthenticated", "sign in first")
    return user


def query_limit(request: web.Request, default: int = 25, maximum: int = 100) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise DomainError("invalid_limit", f"limit must be 1..{maximum}", field="limit")
    return int(raw)
