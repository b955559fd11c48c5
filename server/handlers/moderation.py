"""Reports and moderation over HTTP."""

from __future__ import annotations

from aiohttp import web

from server.handlers.common import current_user, json_response, query_limit, read_json
from server.services.container import SERVICES
from server.services.moderation import ModerationService, require_moderator

routes = web.RouteTableDef()


def _moderation(request: web.Request) -> ModerationService:
    service: ModerationService = request.app[SERVICES].extra["moderation"]
    return service


@routes.post("/api/reports")
async def create_report(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    user = current_user(request)
    report = await _moderation(request).report(user, await read_json(request), svc.limit)
    return json_response(report, status=201)


@routes.get("/api/mod/reports")
async def reports(request: web.Request) -> web.Response:
    page = await _moderation(request).reports(
        current_user(request), request.query.get("status"), request.query.get("before"),
        query_limit(request),
    )  # fmt: skip
    return json_response(page)


@routes.post("/api/mod/reports/{id}/resolve")
async def resolve_report(request: web.Request) -> web.Response:
    moderator = current_user(request)
    require_moderator(moderator)
    report = await _moderation(request).resolve(
        moderator, request.match_info["id"], await read_json(request)
    )
    return json_response(report)


@routes.post("/api/mod/echoes/{id}/remove")
async def remove_echo(request: web.Request) -> web.Response:
    moderator = current_user(request)
    require_moderator(moderator)
    action = await _moderation(request).remove_echo(
        moderator, request.match_info["id"], await read_json(request)
    )
    return json_response(action)


@routes.post("/api/mod/users/{handle}/suspend")
async def suspend(request: web.Request) -> web.Response:
    moderator = current_user(request)
    require_moderator(moderator)
    result = await _moderation(request).suspend(
        moderator, request.match_info["handle"], await read_json(request)
    )
    return json_response(result)


@routes.post("/api/mod/users/{handle}/unsuspend")
async def unsuspend(request: web.Request) -> web.Response:
    moderator = current_user(request)
    require_moderator(moderator)
    result = await _moderation(request).unsuspend(
        moderator, request.match_info["handle"], await read_json(request)
    )
    return json_response(result)


@routes.get("/api/mod/audit")
async def audit(request: web.Request) -> web.Response:
    page = await _moderation(request).audit(
        current_user(request), request.query.get("before"), query_limit(request)
    )
    return json_response(page)
