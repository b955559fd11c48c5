"""The browser surface: which requests may change state, which count as the app's own,
the headers every answer carries, how long a body may take, and what the access log may
write down.

It knows no route's meaning. Routes say what body they take with `body_types` (JSON
unless they say otherwise); everything else is decided from the request's headers.

Cross-site requests (issue 13, item 4). A request authenticated by `Authorization:
Bearer` is a script's: a browser never adds that header by itself, and a page cannot add
it to a cross-origin request without a CORS preflight this server never grants. Every
other state-changing request under /api/ (POST, PUT, PATCH, DELETE) must show it comes
from the app:

- an `Origin` header, which must be an allowed origin (`ECHOHUB_ALLOWED_ORIGINS`, by
  default the request's own `scheme://host`; behind a trusted proxy its scheme); else
- a `Sec-Fetch-Site` header, which must be `same-origin`; else (an old browser, or a
  script that kept the cookie rather than the token)
- when the request carries the session cookie, an `X-CSRF-Token` header equal to the
  session's CSRF token (a hash of the session token: login, sign-up and `GET /api/me`
  answer with it in the same header; a page on another site can neither read it nor
  send a custom header without a preflight).

SameSite=Lax alone does not help here: a page on another port of the same host is the
same *site*. And a request with a body must say `Content-Type: application/json` (or
what its route accepts), so that an HTML form, whose types are text/plain, urlencoded
and multipart, never reaches a JSON handler.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import PayloadEncodingError
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from server.domain.errors import DomainError, Forbidden
from server.handlers.common import (
    MAX_BODY,
    SESSION_COOKIE,
    WS_PATH,
    Handler,
    error_response,
    payload_too_large,
)
from server.settings import Settings, address_in

log = logging.getLogger("echohub.http")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"
JSON = "application/json"
SIGN_IN_PATHS = frozenset({"/api/signup", "/api/login"})
SETTINGS = web.AppKey("surface_settings", Settings)


class RequestTimeout(DomainError):
    status = 408


class UnsupportedContentType(DomainError):
    status = 415


# --- pure rules -------------------------------------------------------------------


class Provenance(enum.Enum):
    """Where a browser says a request comes from."""

    APP = "app"  # our own page (or an origin the settings allow)
    FOREIGN = "foreign"  # another origin, a sandboxed frame, a navigation typed or linked
    UNKNOWN = "unknown"  # no browser header at all: a script, or a very old browser


def provenance(
    origin: str | None, fetch_site: str | None, own_origin: str, allowed: tuple[str, ...]
) -> Provenance:
    """Origin first (it names the page exactly), then Sec-Fetch-Site.

    `allowed` replaces `own_origin` when given, as for the websocket.
    """
    if origin is not None:
        origin = origin.strip().rstrip("/").lower()
        if allowed:
            ok = origin in {a.lower() for a in allowed}
        else:
            ok = origin == own_origin.lower()
        return Provenance.APP if ok else Provenance.FOREIGN
    if fetch_site is not None:
        return Provenance.APP if fetch_site.strip().lower() == "same-origin" else Provenance.FOREIGN
    return Provenance.UNKNOWN


def csrf_token_for(session_token: str) -> str:
    """The session's CSRF token: a one-way hash, so knowing it never gives the session."""
    digest = hashlib.sha256(b"echohub csrf\0" + session_token.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_token_matches(session_token: str, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(csrf_token_for(session_token), sent.strip())


# Query parameters whose values never reach a log line, whatever the route.
_SECRET_PARAMS = frozenset({
    "token", "access_token", "auth", "authorization", "session", "echohub_session",
    "password", "code", "invite", "key", "secret", "csrf", "csrf_token",
})  # fmt: skip
# Paths that carry a secret in a segment: invite codes.
_SECRET_PATHS = re.compile(r"^(/join/|/api/invites/)[^/?#]+")
REDACTED = "[redacted]"


def redact_target(target: str) -> str:
    """A request target (or a whole URL, as in Referer) fit for a log line."""
    try:
        parts = urlsplit(target)
    except ValueError:
        return REDACTED
    path = _SECRET_PATHS.sub(lambda m: m.group(1) + REDACTED, parts.path)
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name.lower() in _SECRET_PARAMS for name, _ in pairs):
            query = urlencode(
                [(n, REDACTED if n.lower() in _SECRET_PARAMS else v) for n, v in pairs], safe="[]"
            )
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def content_type_accepted(content_type: str, accepted: frozenset[str]) -> bool:
    return content_type.lower() in accepted


# --- which bodies a route takes -----------------------------------------------------

_BODY_TYPES: dict[Callable[..., object], frozenset[str]] = {}


def body_types(*types: str) -> Callable[[Handler], Handler]:
    """Mark a handler as taking these content types instead of JSON.

    Its body is then left for it to read (a multipart upload streams through its own
    limits); the origin checks apply all the same.
    """

    def mark(handler: Handler) -> Handler:
        _BODY_TYPES[handler] = frozenset(t.lower() for t in types)
        return handler

    return mark


def _accepted_types(request: web.Request) -> frozenset[str] | None:
    """None: JSON, read here. Else the types the route reads itself."""
    return _BODY_TYPES.get(request.match_info.handler)


# --- middlewares ----------------------------------------------------------------------


def proxy_middleware(settings: Settings) -> Callable[..., Awaitable[StreamResponse]]:
    """Behind a trusted proxy, believe its X-Forwarded-Proto and X-Forwarded-For."""

    @web.middleware
    def forwarded(request: web.Request, handler: Handler) -> Awaitable[StreamResponse]:
        # A plain function, like error_middleware: no frame kept per open websocket.
        if not address_in(request.remote, settings.trusted_proxies):
            return handler(request)
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        client = _forwarded_client(request.headers.getall("X-Forwarded-For", []), settings)
        return handler(request.clone(
            scheme=proto if proto in ("http", "https") else request.scheme,
            remote=client or request.remote or "",
        ))  # fmt: skip

    return forwarded


def _forwarded_client(values: list[str], settings: Settings) -> str | None:
    """The nearest address that is not one of our proxies (the rightmost untrusted)."""
    hops = [h.strip() for v in values for h in v.split(",") if h.strip()]
    for hop in reversed(hops):
        if not address_in(hop, settings.trusted_proxies):
            return hop
    return hops[0] if hops else None


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def is_bearer(request: web.Request) -> bool:
    return request.headers.get("Authorization", "")[:7].lower() == "bearer "


def from_the_app(request: web.Request, settings: Settings) -> bool:
    """Does this request come from a script or from our own page (not another site)?

    What counts as a profile view for footprints: a bearer script, a same-origin request
    by its headers, or one showing the session's CSRF token.
    """
    if is_bearer(request):
        return True
    seen = provenance(
        request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site"),
        own_origin(request), settings.allowed_origins,
    )  # fmt: skip
    if seen is Provenance.UNKNOWN:
        cookie = request.cookies.get(SESSION_COOKIE)
        return cookie is not None and csrf_token_matches(cookie, request.headers.get(CSRF_HEADER))
    return seen is Provenance.APP


def guard_middleware(settings: Settings) -> Callable[..., Awaitable[StreamResponse]]:
    """Refuse cross-site state changes, wrong body types, and bodies too big or too slow."""

    @web.middleware
    def guard(request: web.Request, handler: Handler) -> Awaitable[StreamResponse]:
        # A plain function: the websocket passes through without a frame kept alive.
        if request.path == WS_PATH or not request.path.startswith("/api/"):
            return handler(request)
        return _guarded(request, handler, settings)

    return guard


async def _guarded(request: web.Request, handler: Handler, settings: Settings) -> StreamResponse:
    if request.method in UNSAFE_METHODS and not is_bearer(request):
        _check_origin(request, settings)
    if request.body_exists:
        refusal = await _read_body(request, settings)
        if refusal is not None:
            return refusal
        if _accepted_types(request) is not None:
            return await _streamed(request, handler, settings)
    return await handler(request)


async def _streamed(request: web.Request, handler: Handler, settings: Settings) -> StreamResponse:
    """A route that reads its own body (an upload): the body timeout applies to a body
    that stops arriving, not to one that is long. Each `body_timeout` without a new
    byte ends the request with 408; once the body is in, the handler has all the time
    its work takes (decoding a video is not the client's slowness)."""
    loop = asyncio.get_running_loop()
    content = request.content
    seen = content.total_bytes
    period = min(1.0, settings.body_timeout / 2)
    watcher: asyncio.TimerHandle | None = None
    deadline = asyncio.timeout(settings.body_timeout)

    def watch() -> None:
        nonlocal seen, watcher
        if content.is_eof():
            deadline.reschedule(None)
            return
        if content.total_bytes != seen:
            seen = content.total_bytes
            deadline.reschedule(loop.time() + settings.body_timeout)
        watcher = loop.call_later(period, watch)

    try:
        async with deadline:
            watcher = loop.call_later(period, watch)
            return await handler(request)
    except TimeoutError:
        if not deadline.expired():
            raise  # the handler's own
        log.info("slow body: %s %s from %s: nothing new for %.0f s; closing",
                 request.method, redact_target(request.raw_path), request.remote,
                 settings.body_timeout)  # fmt: skip
        return _closing(RequestTimeout("request_timeout", "the request body stopped arriving"))
    finally:
        if watcher is not None:
            watcher.cancel()


def _check_origin(request: web.Request, settings: Settings) -> None:
    seen = provenance(
        request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site"),
        own_origin(request), settings.allowed_origins,
    )  # fmt: skip
    if seen is Provenance.FOREIGN:
        raise Forbidden("cross_site_request", "this request came from another site")
    cookie = request.cookies.get(SESSION_COOKIE)
    # Signing in or up is not authenticated by the cookie (a stale one may be there).
    if seen is Provenance.UNKNOWN and cookie is not None and request.path not in SIGN_IN_PATHS:
        if not csrf_token_matches(cookie, request.headers.get(CSRF_HEADER)):
            raise Forbidden(
                "csrf_token_required",
                f"a cookie-authenticated change needs the {CSRF_HEADER} header "
                "(or use Authorization: Bearer)",
            )


async def _read_body(request: web.Request, settings: Settings) -> web.Response | None:
    """Check the body's type and size, and read it within the body timeout.

    Bodyless routes get the same treatment: a body over the limit is refused (413)
    whether or not the handler would have read it.
    """
    accepted = _accepted_types(request)
    content_type = request.content_type
    if accepted is None:
        if content_type != JSON:
            raise UnsupportedContentType(
                "unsupported_content_type", f"send the body as JSON (Content-Type: {JSON})"
            )
    elif not content_type_accepted(content_type, accepted):
        raise UnsupportedContentType(
            "unsupported_content_type", f"this endpoint takes {', '.join(sorted(accepted))}"
        )
    if accepted is not None:
        return None
    limit = request.app[MAX_BODY]
    if request.content_length is not None and request.content_length > limit:
        return _closing(payload_too_large())
    try:
        async with asyncio.timeout(settings.body_timeout):
            await request.read()  # kept by aiohttp: the handler's read() gets these bytes
    except TimeoutError:
        log.info("slow body: %s %s from %s: not complete after %.0f s; closing",
                 request.method, redact_target(request.raw_path), request.remote,
                 settings.body_timeout)  # fmt: skip
        return _closing(RequestTimeout("request_timeout", "the request body took too long"))
    except web.HTTPRequestEntityTooLarge:
        return _closing(payload_too_large())
    except (ConnectionResetError, PayloadEncodingError) as exc:
        # One line, not aiohttp's traceback: a client hanging up is not our error.
        log.info("client went away: %s %s from %s during the body (%s)",
                 request.method, redact_target(request.raw_path), request.remote,
                 exc)  # fmt: skip
        return _closing(DomainError("client_gone", "the connection was closed"))
    return None


def _closing(err: DomainError) -> web.Response:
    """The error, on a connection that ends with it (the rest of the body is unread)."""
    response = error_response(err)
    response.force_close()
    return response


# --- headers on every answer ----------------------------------------------------------

# No inline script or style anywhere in web/ (the front end sets styles through the CSSOM,
# which CSP allows). Media may come from blob: (previews before upload) and data: images.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])  # fmt: skip
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # Invite links are paths (/join/<code>): never hand them to another site.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


ResponseHook = Callable[[web.Request, StreamResponse], Awaitable[None]]


def security_headers(settings: Settings) -> ResponseHook:
    """An on_response_prepare hook: every answer of the app (pages, API, static files,
    errors) gets the security headers, and no Server banner."""
    pid = str(os.getpid()) if settings.worker_header else None

    async def add(request: web.Request, response: StreamResponse) -> None:
        headers = response.headers
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
        headers.pop("Server", None)
        if pid is not None:
            headers["X-Echohub-Worker"] = pid

    return add


# --- the access log ------------------------------------------------------------------


class RedactingAccessLogger(AbstractAccessLogger):
    """aiohttp's access line, with secrets in the target and the Referer redacted."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        referer = request.headers.get("Referer")
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.6f "%s" "%s"',
            request.remote or "-", request.method, redact_target(request.raw_path),
            request.version.major, request.version.minor, response.status,
            response.body_length, time, redact_target(referer) if referer else "-",
            request.headers.get("User-Agent", "-"),
        )  # fmt: skip
