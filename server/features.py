"""Feature modules wired into the app: their services, topic resolvers and routes."""

from __future__ import annotations

from aiohttp import web

from server.services.container import Services


def wire(svc: Services) -> None:
    """Create each feature's service and register its topics and socket ops."""


def add_routes(app: web.Application) -> None:
    """Add each feature's HTTP routes."""
