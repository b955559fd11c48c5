"""Requests refused before any route sees them, in the spec's error shape.

aiohttp answers bytes its HTTP parser cannot read (a bad request line, a line over
8190 bytes, a broken header, the rest of a flood past a declared body) itself, in
`RequestHandler.handle_error`: a text/plain page that echoes the client's bytes back
(~400 KB of them for a 20 MB flood), with its `Server: Python/… aiohttp/…` banner, and
a logged traceback whose message holds the start of the request line, query string and
token included. None of the app's middlewares or response hooks run for these: there
is no route, so no app.

aiohttp has no supported hook for this answer (`handler_args` reach RequestHandler's
constructor only; `Server` always builds aiohttp's own RequestHandler; `run_app`
builds its own runner), so `install` replaces that one method on aiohttp's class, once,
at app creation. It keeps the method's signature and contract (log, refuse if bytes
were already written, answer on a closing connection). tests/unit/test_parser_refusals.py
fails if aiohttp's class changes under it, and tests/integration/
test_http_surface_process.py checks the bytes a real server process sends.
"""

from __future__ import annotations

import inspect
import logging

import orjson
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from server.handlers.security import SECURITY_HEADERS

log = logging.getLogger("echohub.http")

# The signature of RequestHandler.handle_error this replacement was written against.
HANDLE_ERROR_PARAMETERS = ("self", "request", "status", "exc", "message")


def refusal(status: int, exc: BaseException | None) -> tuple[int, str, str]:
    """(status, code, message) for what aiohttp refused. Never the client's bytes."""
    if status >= 500:
        return status, "internal_error", "something went wrong on our side"
    if isinstance(exc, LineTooLong):
        return status, "request_too_long", "a request line or header is longer than 8190 bytes"
    return status, "bad_request", "the request could not be read"


class _BannerlessResponse(web.Response):
    """A Response without aiohttp's `Server` header (added as its headers are written;
    an app's on_response_prepare hook removes it for every other answer)."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.popall("Server", None)


def answer_in_the_error_shape(
    self: RequestHandler,
    request: BaseRequest,
    status: int = 500,
    exc: BaseException | None = None,
    message: str | None = None,
) -> StreamResponse:
    """RequestHandler.handle_error, answering JSON and logging one line for a client's
    bytes (a traceback only for a 500, which is a bug of ours)."""
    status, code, text = refusal(status, exc)
    if status >= 500:
        self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
    else:
        # The exception's own text quotes the request line (tokens included): its kind only.
        log.info("unreadable request from %s: %s (%d); closing",
                 request.remote or "-", type(exc).__name__ if exc else "-", status)  # fmt: skip
    if request.writer.output_size > 0:
        raise ConnectionError("an answer was already being written; cannot send the error")
    body = orjson.dumps({"error": {"code": code, "message": text}})
    response = _BannerlessResponse(
        body=body, status=status, headers={**SECURITY_HEADERS,
                                           "Content-Type": "application/json; charset=utf-8"},
    )  # fmt: skip
    response.force_close()
    return response


def fits_this_aiohttp() -> bool:
    """Is aiohttp's handle_error still the method this replaces?"""
    original = getattr(RequestHandler, "handle_error", None)
    if original is None:
        return False
    if original is answer_in_the_error_shape:
        return True
    names = tuple(inspect.signature(original).parameters)
    return names == HANDLE_ERROR_PARAMETERS and hasattr(web.Response, "_prepare_headers")


def install() -> bool:
    """Answer aiohttp's own refusals in the error shape (idempotent). False, with a
    warning, if this aiohttp's RequestHandler is not the one it was written for."""
    if not fits_this_aiohttp():
        log.warning("aiohttp changed: its parser refusals stay text/plain (see %s)", __name__)
        return False
    setattr(RequestHandler, "handle_error", answer_in_the_error_shape)  # noqa: B010
    return True
