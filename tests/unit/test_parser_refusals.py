"""The replacement of aiohttp's parser-error answer (server/handlers/parser_refusals.py)
still fits the aiohttp installed: these fail if aiohttp changes under it."""

from __future__ import annotations

import inspect

from aiohttp.http_exceptions import BadHttpMethod, BadStatusLine, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_response import StreamResponse

from server.handlers import parser_refusals
from server.handlers.parser_refusals import HANDLE_ERROR_PARAMETERS, refusal


def test_aiohttp_still_routes_its_refusals_through_handle_error() -> None:
    # Parse errors become an _ErrInfo whose handler calls self.handle_error.
    source = inspect.getsource(RequestHandler._make_error_handler)
    assert "self.handle_error(" in source
    assert "handle_error(" in inspect.getsource(RequestHandler._handle_request)
    # The Server banner is added where the replacement's response takes it out.
    assert "hdrs.SERVER" in inspect.getsource(StreamResponse._prepare_headers)


def test_install_replaces_the_method_it_was_written_for() -> None:
    assert parser_refusals.install()
    assert RequestHandler.handle_error is parser_refusals.answer_in_the_error_shape
    names = tuple(inspect.signature(parser_refusals.answer_in_the_error_shape).parameters)
    assert names == HANDLE_ERROR_PARAMETERS
    assert parser_refusals.install()  # idempotent


def test_a_refusal_never_carries_the_clients_bytes() -> None:
    secret = "GET /api/search?token=SECRETTOKEN123&q=xxxx"
    cases = [
        (400, LineTooLong(secret, "8190")),
        (400, BadStatusLine(secret)),
        (400, BadHttpMethod(secret)),
        (400, None),
        (500, RuntimeError(secret)),
    ]
    for status, exc in cases:
        answered, code, message = refusal(status, exc)
        assert answered == status
        assert "SECRETTOKEN123" not in code + message
    assert refusal(400, LineTooLong(secret, "8190"))[1] == "request_too_long"
    assert refusal(400, BadStatusLine(secret))[1] == "bad_request"
    assert refusal(500, None)[1] == "internal_error"
