"""Reports and moderation over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from server.handlers.common import current_user, json_response, query_limit, read_json
from server.services.common import User
from server.services.container import FEATURES, SERVICES
from server.services.moderation import ModerationService, require_moderator

routes = web.RouteTableDef()


def _moderation(request: web.Request) -> ModerationService:
    service: ModerationService = request.app[FEATURES].moderation
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


# A moderator's action on the thing named in the path, with an optional reason.
Action = Callable[[ModerationService, User, str, object], Awaitable[dict[str, Any]]]


async def _act(request: web.Request, action: Action, name: str) -> web.Response:
    moderator = current_user(request)
    require_moderator(moderator)  # before the body: a member gets 403 whatever they send
    body = await read_json(request)
    return json_response(await action(_moderation(request), moderator, request.match_info[name],
                                      body))  # fmt: skip


@routes.post("/api/mod/reports/{id}/resolve")
async def resolve_report(request: web.Request) -> web.Response:
    return await _act(request, ModerationService.resolve, "id")


@routes.post("/api/mod/echoes/{id}/remove")
async def remove_echo(request: web.Request) -> web.Response:
    return await _act(request, ModerationService.remove_echo, "id")


@routes.post("/api/mod/users/{handle}/suspend")
async def suspend(request: web.Request) -> web.Response:
    return await _act(request, ModerationService.suspend, "handle")


@routes.post("/api/mod/users/{handle}/unsuspend")
async def unsuspend(request: web.Request) -> web.Response:
    return await _act(request, ModerationService.unsuspend, "handle")


@routes.get("/api/mod/audit")
async def audit(request: web.Request) -> web.Response:
    page = await _moderation(request).audit(
        current_user(request), request.query.get("before"), query_limit(request)
    )
    return json_response(page)
