"""The social graph, echoes, likes and feeds over HTTP."""

from __future__ import annotations

from aiohttp import web

from server.handlers.common import current_user, json_response, query_limit, read_json
from server.handlers.security import from_the_app
from server.services.container import FEATURES, SERVICES, Services
from server.services.echoes import EchoService
from server.services.graph import GraphService

routes = web.RouteTableDef()


def _svc(request: web.Request) -> tuple[Services, GraphService, EchoService]:
    features = request.app[FEATURES]
    return request.app[SERVICES], features.graph, features.echoes


@routes.get("/api/users/{handle}")
async def profile(request: web.Request) -> web.Response:
    svc, graph, _ = _svc(request)
    # A footprint only for a view from the app or a script, never for a cross-site
    # navigation or embed that merely carries the cookie (SPEC, Footprints).
    visit = from_the_app(request, svc.settings)
    profile = await graph.profile(current_user(request), request.match_info["handle"], visit=visit)
    return json_response(profile)


@routes.get("/api/users/{handle}/echoes")
async def archive(request: web.Request) -> web.Response:
    _, _, echoes = _svc(request)
    user = current_user(request)
    page = await echoes.archive(user, request.match_info["handle"], request.query.get("before"),
                                query_limit(request))  # fmt: skip
    return json_response(page)


def _graph_edit(kind: str, on: bool) -> object:
    async def handler(request: web.Request) -> web.Response:
        _, graph, _ = _svc(request)
        user, handle = current_user(request), request.match_info["handle"]
        if kind == "follow":
            result = await (graph.follow(user, handle) if on else graph.unfollow(user, handle))
        elif kind == "block":
            result = await (graph.block(user, handle) if on else graph.unblock(user, handle))
        else:
            result = await graph.mute(user, handle, on)
        return json_response(result)

    return handler


for _kind in ("follow", "block", "mute"):
    routes.post(f"/api/users/{{handle}}/{_kind}")(_graph_edit(_kind, True))  # type: ignore[arg-type]
    routes.delete(f"/api/users/{{handle}}/{_kind}")(_graph_edit(_kind, False))  # type: ignore[arg-type]


@routes.post("/api/echoes")
async def create_echo(request: web.Request) -> web.Response:
    svc, _, echoes = _svc(request)
    user = current_user(request)
    post = await echoes.create(user, await read_json(request), svc.limit)
    return json_response(post, status=201)


@routes.get("/api/echoes/{id}")
async def get_echo(request: web.Request) -> web.Response:
    _, _, echoes = _svc(request)
    return json_response(await echoes.get(current_user(request), request.match_info["id"]))


@routes.get("/api/echoes/{id}/thread")
async def thread(request: web.Request) -> web.Response:
    _, _, echoes = _svc(request)
    user = current_user(request)
    return json_response(await echoes.thread(user, request.match_info["id"],
                                             request.query.get("before"),
                                             query_limit(request)))  # fmt: skip


@routes.delete("/api/echoes/{id}")
async def delete_echo(request: web.Request) -> web.Response:
    _, _, echoes = _svc(request)
    return json_response(await echoes.delete(current_user(request), request.match_info["id"]))


@routes.post("/api/echoes/{id}/like")
async def like(request: web.Request) -> web.Response:
    _, _, echoes = _svc(request)
    return json_response(await echoes.like(current_user(request), request.match_info["id"]))


@routes.delete("/api/echoes/{id}/like")
async def unlike(request: web.Request) -> web.Response:
    _, _, echoes = _svc(request)
    return json_response(await echoes.unlike(current_user(request), request.match_info["id"]))


@routes.get("/api/echoes/{id}/likes")
async def likes(request: web.Request) -> web.Response:
    _, _, echoes = _svc(request)
    return json_response(await echoes.likes(current_user(request), request.match_info["id"]))


@routes.get("/api/feed/home")
async def feed_home(request: web.Request) -> web.Response:
    _, _, echoes = _svc(request)
    user = current_user(request)
    return json_response(await echoes.home(user, request.query.get("before"),
                                           query_limit(request)))  # fmt: skip


@routes.get("/api/feed/friends")
async def feed_friends(request: web.Request) -> web.Response:
    _, _, echoes = _svc(request)
    return json_response(await echoes.friends_latest(current_user(request)))


@routes.get("/api/feed/discover")
async def feed_discover(request: web.Request) -> web.Response:
    _, _, echoes = _svc(request)
    user = current_user(request)
    return json_response(await echoes.discover(user, request.query.get("before"),
                                               query_limit(request)))  # fmt: skip


@routes.get("/api/tags/{tag}")
async def tag_page(request: web.Request) -> web.Response:
    _, _, echoes = _svc(request)
    user = current_user(request)
    return json_response(await echoes.tag_page(user, request.match_info["tag"],
                                               request.query.get("before"),
                                               query_limit(request)))  # fmt: skip
