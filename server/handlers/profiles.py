"""Profiles and discovery over HTTP: editing oneself, the password, search, suggestions."""

from __future__ import annotations

from aiohttp import web

from server.handlers.common import TOKEN_KEY, current_user, json_response, query_limit, read_json
from server.services.container import FEATURES, SERVICES
from server.services.discovery import DiscoveryService
from server.services.profiles import ProfileService

routes = web.RouteTableDef()


def _profiles(request: web.Request) -> ProfileService:
    profiles: ProfileService = request.app[FEATURES].profiles
    return profiles


def _discovery(request: web.Request) -> DiscoveryService:
    discovery: DiscoveryService = request.app[FEATURES].discovery
    return discovery


@routes.patch("/api/me")
async def update_me(request: web.Request) -> web.Response:
    user = current_user(request)
    return json_response(await _profiles(request).update(user, await read_json(request)))


@routes.put("/api/me/password")
async def change_password(request: web.Request) -> web.Response:
    user = current_user(request)
    svc = request.app[SERVICES]
    result = await _profiles(request).change_password(
        user, request[TOKEN_KEY], await read_json(request), svc.limit
    )
    return json_response(result)


@routes.get("/api/search")
async def search(request: web.Request) -> web.Response:
    user = current_user(request)
    svc = request.app[SERVICES]
    query = request.query
    await svc.limit("searches", user.id)
    return json_response(await _discovery(request).search(
        user, query.get("q"), query.get("type"), query.get("before"), query_limit(request, 20, 50)
    ))  # fmt: skip


@routes.get("/api/suggestions")
async def suggestions(request: web.Request) -> web.Response:
    return json_response(await _discovery(request).suggestions(current_user(request)))
