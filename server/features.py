"""Feature modules wired into the app: their services, topic resolvers and routes.

Each feature adds its service to `svc.extra`, its topics to the resolver and its HTTP
routes here, so `create_app` stays the same as features arrive.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.handlers import communities as community_handlers
from server.handlers import footprints as footprint_handlers
from server.handlers import social
from server.services.common import User
from server.services.communities import CommunityService
from server.services.container import Services
from server.services.echoes import EchoService
from server.services.footprints import FootprintService
from server.services.graph import GraphService
from server.services.publish import Publisher
from server.store.communities import CommunityStore
from server.store.echoes import EchoStore
from server.store.footprints import FootprintStore
from server.store.graph import GraphStore


def wire(svc: Services) -> None:
    """Create each feature's service and register its topics and socket ops."""
    publisher = Publisher(svc.bus)
    svc.extra["publisher"] = publisher
    graph = GraphService(svc.accounts, GraphStore(svc.client), publisher, svc.bus, svc.clock)
    echoes = EchoService(svc.accounts, graph, EchoStore(svc.client), publisher, svc.clock)
    communities = CommunityService(svc.accounts, CommunityStore(svc.client), publisher, svc.clock)
    echoes.communities = communities
    footprints = FootprintService(svc.accounts, graph, FootprintStore(svc.client), publisher,
                                  svc.clock)  # fmt: skip
    graph.on_profile_view.append(footprints.on_profile_view)
    svc.extra.update(graph=graph, echoes=echoes, communities=communities,
                     footprints=footprints)  # fmt: skip
    topics = svc.extra["topics"]
    topics.register("home", graph.resolve_home)
    topics.register("user", graph.resolve_user, prefix=True)
    topics.register("community", communities.resolve_community, prefix=True)

    async def post_op(user: User, body: dict[str, Any]) -> dict[str, Any]:
        return await echoes.create(user, body, svc.limit)

    svc.extra["post_op"] = post_op


def add_routes(app: web.Application) -> None:
    """Add each feature's HTTP routes."""
    app.router.add_routes(social.routes)
    app.router.add_routes(footprint_handlers.routes)
    app.router.add_routes(community_handlers.routes)
