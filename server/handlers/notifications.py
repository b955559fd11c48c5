"""Notification history over HTTP."""

from __future__ import annotations

from aiohttp import web

from server.handlers.common import current_user, json_response, query_limit, read_json
from server.services.container import FEATURES
from server.services.notifications import NotificationService

routes = web.RouteTableDef()


def _svc(request: web.Request) -> NotificationService:
    service: NotificationService = request.app[FEATURES].notifications
    return service


@routes.get("/api/notifications")
async def notifications(request: web.Request) -> web.Response:
    user = current_user(request)
    page = await _svc(request).page(user, request.query.get("before"), query_limit(request))
    return json_response(page)


@routes.post("/api/notifications/read")
async def mark_read(request: web.Request) -> web.Response:
    user = current_user(request)
    return json_response(await _svc(request).mark_read(user, await read_json(request)))
