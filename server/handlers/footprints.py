"""Footprints over HTTP: the signed-in member's recent visitors."""

from __future__ import annotations

from aiohttp import web

from server.handlers.common import current_user, json_response
from server.services.container import FEATURES
from server.services.footprints import FootprintService

routes = web.RouteTableDef()


@routes.get("/api/footprints")
async def my_footprints(request: web.Request) -> web.Response:
    footprints: FootprintService = request.app[FEATURES].footprints
    return json_response(await footprints.visitors(current_user(request)))
