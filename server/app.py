"""create_app: the one place the application is wired (state, routes, lifecycle)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from server import store
from server.bus import RedisBus
from server.handlers import accounts as account_handlers
from server.handlers import ops, parser_refusals
from server.handlers.common import (
    MAX_BODY,
    TOKEN_KEY,
    USER_KEY,
    WS_PATH,
    Handler,
    error_middleware,
    token_of,
)
from server.handlers.security import guard_middleware, proxy_middleware, security_headers
from server.handlers.ws import SOCKETS, close_all_sockets, websocket
from server.hub import Hub
from server.services.accounts import AccountService
from server.services.common import Clock, system_clock
from server.services.container import FEATURES, SERVICES, Services
from server.services.logins import HashPool, LoginGuard
from server.services.topics import TopicResolver, resolve_me, resolve_public
from server.settings import Settings
from server.store.accounts import AccountStore
from server.store.logins import LoginStore
from server.store.ratelimit import RateLimitStore
from server.store.resp import EngineClient

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
# Files of web/ served at the root (the PWA's worker and manifest), with their types.
ROOT_FILES = {"sw.js": "text/javascript", "manifest.webmanifest": "application/manifest+json"}


@web.middleware
def auth_middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Attach the signed-in member, if any; handlers that need one call current_user.

    A plain function: outside /api/ (the websocket above all, whose handler lives as
    long as the socket) no coroutine frame of this middleware is kept alive.
    """
    if request.path.startswith("/api/") and request.path not in ("/api/signup", "/api/login"):
        return _authenticated(request, handler)
    return handler(request)


async def _authenticated(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = token_of(request)
    if token:
        user = await request.app[SERVICES].accounts.authenticate(token)
        if user is not None:
            request[USER_KEY] = user
            request[TOKEN_KEY] = token
    return await handler(request)


def create_app(
    settings: Settings, redis_url: str, *, clock: Clock = system_clock
) -> web.Application:
    parser_refusals.install()  # before any route: aiohttp's own answers, as JSON
    app = web.Application(
        # Outermost first: the trusted proxy's scheme and address are known to all the
        # rest; the guard refuses cross-site changes and bad bodies before anyone reads.
        middlewares=[
            proxy_middleware(settings), error_middleware, guard_middleware(settings),
            auth_middleware,
        ],
        client_max_size=settings.max_body_size,
    )
    app[MAX_BODY] = settings.max_body_size
    app[SOCKETS] = set()
    registry = CollectorRegistry(auto_describe=True)
    app[ops.REGISTRY] = registry

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        engine = EngineClient(redis_url)
        client = store.connect(redis_url, lambda: engine.unresponsive)
        bus = RedisBus(redis_url, client, engine, history_size=settings.history_size)
        hub = Hub(bus, send_queue_limit=settings.send_queue_limit)
        hub.before_flush.append(engine.flush)
        hub.before_flush.append(bus.read_now)
        bus.sink = hub
        logins = (
            None if settings.login_limit is None
            else LoginGuard(LoginStore(engine), settings.login_limit, clock)
        )  # fmt: skip
        accounts = AccountService(
            AccountStore(client, engine), clock,
            password_cost=settings.password_cost, session_ttl=settings.session_ttl,
            hashes=HashPool(settings.hash_workers, settings.hash_queue), logins=logins,
        )  # fmt: skip
        topics = TopicResolver()
        topics.register("me", resolve_me)
        topics.register("public", resolve_public)
        svc = Services(settings, client, engine, bus, hub, clock, accounts,
                       RateLimitStore(engine), topics)  # fmt: skip
        bus.on_control = svc.on_control
        from server import features

        app[FEATURES] = features.wire(svc)
        app[SERVICES] = svc
        registry.register(ops.HubCollector(svc))
        await bus.start()
        hub.start_heartbeat(settings.heartbeat)
        yield
        hub.stop_heartbeat()
        await bus.stop()
        await engine.aclose()
        await client.aclose()
        accounts.hashes.close()

    app.on_response_prepare.append(security_headers(settings))
    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(close_all_sockets)

    app.router.add_routes(ops.routes)
    app.router.add_routes(account_handlers.routes)
    from server import features

    features.add_routes(app)
    app.router.add_get(WS_PATH, websocket)
    web_dir = Path(settings.web_dir) if settings.web_dir else WEB_DIR
    if web_dir.is_dir():
        index = web_dir / "index.html"

        async def page(request: web.Request) -> web.StreamResponse:
            if not index.exists():
                raise web.HTTPNotFound()
            return web.FileResponse(index, headers={"Cache-Control": "no-cache"})

        app.router.add_get("/", page)
        app.router.add_get("/join/{code}", page)
        # The PWA's service worker and manifest live at the root: a worker's scope is
        # its own path, and it must cover the whole page. Revalidated on every load.
        for name, content_type in ROOT_FILES.items():
            if (web_dir / name).is_file():
                app.router.add_get(f"/{name}", _root_file(web_dir / name, content_type))
        for sub in ("js", "css", "img"):
            if (web_dir / sub).is_dir():
                app.router.add_static(f"/{sub}", web_dir / sub)
    return app


def _root_file(path: Path, content_type: str) -> Handler:
    async def serve(request: web.Request) -> web.StreamResponse:
        headers = {"Cache-Control": "no-cache", "Content-Type": content_type}
        return web.FileResponse(path, headers=headers)

    return serve
