"""The services of one server process, wired once in `create_app` and kept in app state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import redis.asyncio as redis
from aiohttp import web

from server.bus import RedisBus
from server.domain.errors import RateLimited
from server.hub import Connection, Hub
from server.protocol import error_message
from server.services import control
from server.services.accounts import AccountService
from server.services.common import Clock, User
from server.services.communities import CommunityService
from server.services.control import CloseSession, CloseUser, RebindHome, Revoke
from server.services.discovery import DiscoveryService
from server.services.echoes import EchoService
from server.services.events import EventService
from server.services.footprints import FootprintService
from server.services.graph import GraphService
from server.services.media import MediaService
from server.services.moderation import ModerationService
from server.services.notifications import NotificationService
from server.services.profiles import ProfileService
from server.services.publish import Publisher
from server.services.topics import TopicResolver
from server.settings import Settings
from server.store.accounts import session_key_of
from server.store.ratelimit import RateLimitStore
from server.store.resp import EngineClient

# Seconds a close or revocation is remembered for sockets and subscriptions being set
# up (an upgrade or a `sub` takes far less).
RECENT_MEMORY = 60.0


V = TypeVar("V")


class _Recent(Generic[V]):
    """Keys noted in the last `memory` seconds (monotonic), each with a value."""

    def __init__(self, memory: float = RECENT_MEMORY) -> None:
        self.memory = memory
        self._noted: dict[str, tuple[float, V]] = {}

    def note(self, key: str, value: V) -> None:
        now = time.monotonic()
        noted = self._noted
        noted.pop(key, None)
        noted[key] = (now, value)
        # Oldest first (insertion order), so pruning stops at the first one still fresh.
        while noted:
            oldest = next(iter(noted))
            if noted[oldest][0] > now - self.memory:
                break
            del noted[oldest]

    def since(self, key: str, moment: float) -> V | None:
        """The value noted for `key` at or after `moment`, if any."""
        entry = self._noted.get(key)
        return entry[1] if entry is not None and entry[0] >= moment else None


@dataclass
class Services:
    settings: Settings
    client: redis.Redis
    engine: EngineClient  # the lean client of the hot paths (server.store.resp)
    bus: RedisBus
    hub: Hub
    clock: Clock
    accounts: AccountService
    ratelimits: RateLimitStore
    # The socket topics: `me` and `public` here, each feature's own added as it is wired.
    topics: TopicResolver
    # Features' takers of control messages (a broadcast to every process): each returns
    # True when the message was its kind, which then goes no further.
    control_hooks: list[Callable[[dict[str, Any]], bool]] = field(default_factory=list)
    _tasks: set[asyncio.Future[None]] = field(default_factory=set)
    # Closes (code, reason by principal or session) and topic revocations (why, by
    # principal and topic) broadcast in the last minute, for sockets and subscriptions
    # that were being set up when the broadcast came (see ended_since, revoked_since).
    _closed: _Recent[tuple[int, str]] = field(default_factory=_Recent)
    _revoked: _Recent[str] = field(default_factory=_Recent)

    def base_url(self, request: web.Request) -> str:
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        return f"{request.scheme}://{request.host}"

    async def limit(self, name: str, subject: str) -> None:
        """Take a token from the named limit, or raise RateLimited (429)."""
        limit = self.settings.rate_limits.get(name)
        if limit is None:
            return
        wait = await self.ratelimits.take(name, subject, limit)
        if wait > 0:
            raise RateLimited(wait, f"too many {name}; try again in {wait:.0f} s")

    async def end_session(self, token: str, user: User) -> None:
        await self.accounts.logout(token, user)
        await self.bus.publish_control(control.encode(CloseSession(session_key_of(token))))

    async def close_user(self, user_id: str, code: int, reason: str = "account closed") -> None:
        """Close the user's sockets on every process."""
        await self.bus.publish_control(control.encode(CloseUser(user_id, code, reason)))

    async def revoke_topic(self, user_id: str, topic: str, why: str) -> None:
        """End the member's subscriptions to `topic` on every process (they lost the
        right to it); each socket gets a `forbidden` error frame naming the topic."""
        await self.bus.publish_control(control.encode(Revoke(user_id, topic, why)))

    def on_control(self, message: dict[str, Any]) -> None:
        for hook in self.control_hooks:
            if hook(message):
                return
        match control.decode(message):
            case Revoke(user, topic, why):
                self._revoked.note(f"{user}\0{topic}", why)
                for conn in self.hub.connections_of(user):
                    self.revoke(conn, topic, why)
            case RebindHome(user, add, remove):
                self._rebind_home(user, list(add), list(remove))
            case CloseUser(user, code, reason):
                self._closed.note(user, (code, reason))
                self.hub.close_principal(user, code, reason)
            case CloseSession(session, code):
                self._closed.note(session, (code, "session ended"))
                self.hub.close_session(session, code, "session ended")
            case None:
                pass

    def ended_since(self, principal: str, session: str, since: float) -> tuple[int, str] | None:
        """The close (code, reason) of a member's or session's sockets broadcast after
        `since` (monotonic): a socket whose upgrade began before it was not registered
        yet, so the broadcast missed it."""
        for key in (principal, session):
            end = self._closed.since(key, since)
            if end is not None:
                return end
        return None

    def revoked_since(self, principal: str, topic: str, since: float) -> str | None:
        """Why the member lost `topic`, if that was broadcast after `since`: a `sub` that
        was being resolved then may have missed it."""
        return self._revoked.since(f"{principal}\0{topic}", since)

    def revoke(self, conn: Connection, topic: str, why: str) -> None:
        """End one socket's subscription to `topic` with a `forbidden` error frame."""
        if self.hub.unsubscribe(conn, topic):
            self.hub.send(conn, error_message(None, "forbidden", why, topic=topic))

    def _rebind_home(self, user_id: str, add: list[str], remove: list[str]) -> None:
        """Widen or narrow the live `home` subscriptions of a member on this process."""
        for conn in self.hub.connections_of(user_id):
            if "home" not in conn.subs:
                continue
            if remove:
                self.hub.remove_channels(conn, "home", remove)
            if add:
                task = asyncio.ensure_future(self.hub.add_channels(conn, "home", add))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)


SERVICES = web.AppKey("services", Services)


# A socket's `post` op: the member who opened the socket, the body; the post as sent.
Poster = Callable[[User, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Features:
    """Each feature's service, built in dependency order by `features.wire`."""

    publisher: Publisher
    notifications: NotificationService
    graph: GraphService
    echoes: EchoService
    communities: CommunityService
    footprints: FootprintService
    events: EventService
    moderation: ModerationService
    media: MediaService
    profiles: ProfileService
    discovery: DiscoveryService
    post_op: Poster


FEATURES = web.AppKey("features", Features)
