"""Communities over HTTP: create, browse, join and leave, answer requests, read posts."""

from __future__ import annotations

from aiohttp import web

from server.handlers.common import current_user, json_response, query_limit, read_json
from server.services.communities import CommunityService
from server.services.container import FEATURES
from server.services.echoes import EchoService

routes = web.RouteTableDef()


def _communities(request: web.Request) -> CommunityService:
    communities: CommunityService = request.app[FEATURES].communities
    return communities


@routes.post("/api/communities")
async def create_community(request: web.Request) -> web.Response:
    user = current_user(request)
    created = await _communities(request).create(user, await read_json(request))
    return json_response(created, status=201)


@routes.get("/api/communities")
async def browse(request: web.Request) -> web.Response:
    user = current_user(request)
    mine = request.query.get("mine", "").lower() in ("1", "true", "yes")
    page = await _communities(request).browse(user, request.query.get("before"),
                                              query_limit(request), mine=mine)  # fmt: skip
    return json_response(page)


@routes.get("/api/communities/{id}")
async def get_community(request: web.Request) -> web.Response:
    user = current_user(request)
    return json_response(await _communities(request).get(user, request.match_info["id"]))


@routes.post("/api/communities/{id}/join")
async def join(request: web.Request) -> web.Response:
    user = current_user(request)
    return json_response(await _communities(request).join(user, request.match_info["id"]))


@routes.post("/api/communities/{id}/leave")
async def leave(request: web.Request) -> web.Response:
    user = current_user(request)
    return json_response(await _communities(request).leave(user, request.match_info["id"]))


@routes.get("/api/communities/{id}/members")
async def members(request: web.Request) -> web.Response:
    user = current_user(request)
    page = await _communities(request).members(user, request.match_info["id"],
                                               request.query.get("before"),
                                               query_limit(request))  # fmt: skip
    return json_response(page)


@routes.get("/api/communities/{id}/requests")
async def pending_requests(request: web.Request) -> web.Response:
    user = current_user(request)
    return json_response(await _communities(request).pending(user, request.match_info["id"]))


def _answer(approve: bool) -> object:
    async def handler(request: web.Request) -> web.Response:
        user = current_user(request)
        info = request.match_info
        return json_response(await _communities(request).answer(user, info["id"], info["handle"],
                                                                 approve))  # fmt: skip

    return handler


routes.post("/api/communities/{id}/requests/{handle}/approve")(_answer(True))  # type: ignore[arg-type]
routes.post("/api/communities/{id}/requests/{handle}/reject")(_answer(False))  # type: ignore[arg-type]


@routes.get("/api/communities/{id}/echoes")
async def community_echoes(request: web.Request) -> web.Response:
    user = current_user(request)
    community = request.match_info["id"]
    await _communities(request).check_readable(user, community)
    echoes: EchoService = request.app[FEATURES].echoes
    page = await echoes.community_page(user, community, request.query.get("before"),
                                       query_limit(request))  # fmt: skip
    return json_response(page)
