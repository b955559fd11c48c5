"""Events over HTTP: announce, read, edit, cancel, RSVP, a community's events."""

from __future__ import annotations

from aiohttp import web

from server.handlers.common import current_user, json_response, query_limit, read_json
from server.services.container import FEATURES, SERVICES
from server.services.events import EventService

routes = web.RouteTableDef()


def _events(request: web.Request) -> EventService:
    events: EventService = request.app[FEATURES].events
    return events


@routes.post("/api/events")
async def create_event(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    user = current_user(request)
    event = await _events(request).create(user, await read_json(request), svc.limit)
    return json_response(event, status=201)


@routes.get("/api/events")
async def upcoming_events(request: web.Request) -> web.Response:
    user = current_user(request)
    page = await _events(request).upcoming(user, request.query.get("before"),
                                           query_limit(request))  # fmt: skip
    return json_response(page)


@routes.get("/api/events/{id}")
async def get_event(request: web.Request) -> web.Response:
    user = current_user(request)
    return json_response(await _events(request).get(user, request.match_info["id"]))


@routes.patch("/api/events/{id}")
async def update_event(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await read_json(request)
    return json_response(await _events(request).update(user, request.match_info["id"], body))


@routes.post("/api/events/{id}/cancel")
async def cancel_event(request: web.Request) -> web.Response:
    user = current_user(request)
    return json_response(await _events(request).cancel(user, request.match_info["id"]))


@routes.put("/api/events/{id}/rsvp")
async def rsvp(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await read_json(request)
    return json_response(await _events(request).rsvp(user, request.match_info["id"], body))


@routes.get("/api/communities/{id}/events")
async def community_events(request: web.Request) -> web.Response:
    user = current_user(request)
    page = await _events(request).community_events(user, request.match_info["id"],
                                                   request.query.get("before"),
                                                   query_limit(request))  # fmt: skip
    return json_response(page)
