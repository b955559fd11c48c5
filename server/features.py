"""Feature modules wired into the app: their services, topic resolvers, routes and
background tasks.

Each feature adds its service to `Features`, its topics to the resolver and its HTTP
routes here, so `create_app` stays the same as features arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from server.handlers import communities as community_handlers
from server.handlers import events as event_handlers
from server.handlers import footprints as footprint_handlers
from server.handlers import media as media_handlers
from server.handlers import moderation as moderation_handlers
from server.handlers import notifications as notification_handlers
from server.handlers import profiles as profile_handlers
from server.handlers import social
from server.services.common import User
from server.services.communities import CommunityService
from server.services.container import FEATURES, SERVICES, Features, Services
from server.services.discovery import DiscoveryService
from server.services.echoes import EchoService
from server.services.events import EventService
from server.services.footprints import FootprintService
from server.services.graph import GraphService
from server.services.media import MediaService
from server.services.media_pool import MediaPool
from server.services.moderation import AuditLog, ModerationService
from server.services.notifications import NotificationService
from server.services.profiles import ProfileService
from server.services.publish import Publisher
from server.store.blobs import DiskBlobs
from server.store.communities import CommunityStore
from server.store.echoes import EchoStore
from server.store.events import EventStore
from server.store.footprints import FootprintStore
from server.store.graph import GraphStore
from server.store.media import MediaStore
from server.store.moderation import ModerationStore
from server.store.notifications import NotificationStore
from server.store.search import SearchStore


def wire(svc: Services) -> Features:
    """Create each feature's service and register its topics and socket ops."""
    publisher = Publisher(svc.bus)
    graph_store = GraphStore(svc.client, svc.engine)
    graph = GraphService(svc.accounts, graph_store, publisher, svc.bus, svc.clock)
    communities = CommunityService(svc.accounts, CommunityStore(svc.client), publisher, svc.clock)
    echo_store = EchoStore(svc.client, svc.engine)
    audit_log = AuditLog(publisher, svc.clock)
    media = _media_service(svc)
    echoes = EchoService(svc.accounts, graph, communities, audit_log, media, echo_store,
                         publisher, svc.clock)  # fmt: skip
    footprints = FootprintService(svc.accounts, graph, FootprintStore(svc.client), publisher,
                                  svc.clock)  # fmt: skip
    graph.on_profile_view.append(footprints.on_profile_view)
    events = EventService(graph, communities, EventStore(svc.client), publisher, svc.clock)
    moderation = ModerationService(svc.accounts, echoes, audit_log, ModerationStore(svc.client),
                                   publisher, svc.clock, svc.close_user)  # fmt: skip
    search_store = SearchStore(svc.client, svc.engine)
    profiles = ProfileService(svc.accounts, graph, search_store, publisher,
                              svc.bus.publish_control, media, svc.clock,
                              password_cost=svc.settings.password_cost)  # fmt: skip
    svc.accounts.on_signup.append(profiles.on_signup)
    svc.control_hooks.append(profiles.on_control)
    discovery = DiscoveryService(svc.accounts, graph, echoes, search_store)
    notifications = NotificationService(NotificationStore(svc.engine), publisher)
    topics = svc.topics
    topics.register("home", graph.resolve_home)
    topics.register("user", graph.resolve_user, prefix=True)
    topics.register("community", communities.resolve_community, prefix=True)
    topics.register("event", events.resolve_event, prefix=True)
    topics.register("mod", moderation.resolve_mod)
    topics.add_replay_rule(echoes.replay_rule)

    async def post_op(user: User, body: dict[str, Any]) -> dict[str, Any]:
        # A socket keeps the member it opened with: post under their name as it is now.
        return await echoes.create(profiles.current(user), body, svc.limit)

    return Features(publisher, notifications, graph, echoes, communities, footprints, events,
                    moderation, media, profiles, discovery, post_op)  # fmt: skip


def _media_service(svc: Services) -> MediaService:
    settings = svc.settings
    root = Path(settings.data_dir) / "media"
    workers = settings.media_workers or max(1, (os.cpu_count() or 2) // 2)
    pool = MediaPool(workers, memory_limit=settings.media_memory_limit,
                     job_seconds=settings.media_job_seconds)  # fmt: skip
    blobs = DiskBlobs(root)
    return MediaService(MediaStore(svc.client), blobs, pool, svc.clock, blobs.tmp)


async def _background(app: web.Application) -> AsyncIterator[None]:
    """This process's background tasks (the event-start scheduler, the media sweeper).

    Runs after the app's own lifecycle context has built the services and started the
    bus (cleanup contexts start in order), and stops before they are torn down.
    """
    svc, features = app[SERVICES], app[FEATURES]
    media = features.media
    stopping = asyncio.Event()
    task = asyncio.create_task(
        features.events.run_scheduler(svc.settings.scheduler_interval, stopping))
    sweeper = asyncio.create_task(media.run_sweeper(svc.settings.media_sweep_interval, stopping))
    yield
    # Stop them between two steps (never inside a claim and its publication).
    stopping.set()
    with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(sweeper, 5.0)
    await asyncio.to_thread(media.pool.close)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), 5.0)
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def add_routes(app: web.Application) -> None:
    """Add each feature's HTTP routes, and its background tasks to the app lifecycle."""
    app.router.add_routes(social.routes)
    app.router.add_routes(footprint_handlers.routes)
    app.router.add_routes(event_handlers.routes)
    app.router.add_routes(community_handlers.routes)
    app.router.add_routes(moderation_handlers.routes)
    app.router.add_routes(profile_handlers.routes)
    app.router.add_routes(notification_handlers.routes)
    app.router.add_routes(media_handlers.routes)
    app.cleanup_ctx.append(_background)
