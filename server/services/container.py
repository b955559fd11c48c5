"""The services of one server process, wired once in `create_app` and kept in app state."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as redis
from aiohttp import web

from server.bus import RedisBus
from server.domain.errors import RateLimited
from server.hub import Hub
from server.protocol import CloseCode, error_message
from server.services.accounts import AccountService
from server.services.common import Clock, User
from server.settings import Settings
from server.store.accounts import session_key_of
from server.store.ratelimit import RateLimitStore
from server.store.resp import EngineClient

# Seconds a member's or session's close is remembered for sockets still upgrading.
ENDED_MEMORY = 60.0


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
    # Filled by the feature modules as they are wired (topics, echoes, graph, ...).
    extra: dict[str, Any] = field(default_factory=dict)
    _tasks: set[asyncio.Future[None]] = field(default_factory=set)
    # Sockets closed by member or session, recently: (monotonic time, code, reason) by
    # principal or session key, for sockets whose upgrade was under way (see ended_since).
    _ended: dict[str, tuple[float, int, str]] = field(default_factory=dict)

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
        await self.bus.publish_control(
            {"close_session": session_key_of(token), "code": int(CloseCode.SESSION_ENDED)}
        )

    async def close_user(self, user_id: str, code: int, reason: str = "account closed") -> None:
        """Close the user's sockets on every process."""
        await self.bus.publish_control({"close_user": user_id, "code": code, "reason": reason})

    async def revoke_topic(self, user_id: str, topic: str, why: str) -> None:
        """End the member's subscriptions to `topic` on every process (they lost the
        right to it); each socket gets a `forbidden` error frame naming the topic."""
        await self.bus.publish_control({"revoke": user_id, "topic": topic, "why": why})

    def on_control(self, message: dict[str, Any]) -> None:
        if "revoke" in message:
            topic, why = str(message.get("topic", "")), str(message.get("why", ""))[:200]
            for conn in self.hub.connections_of(str(message["revoke"])):
                if self.hub.unsubscribe(conn, topic):
                    self.hub.send(conn, error_message(None, "forbidden", why, topic=topic))
            return
        if "home" in message:
            self._rebind_home(str(message["home"]), message.get("add", []),
                              message.get("remove", []))  # fmt: skip
            return
        code = int(message.get("code", CloseCode.SESSION_ENDED))
        if "close_user" in message:
            reason = str(message.get("reason", "account closed"))[:100]
            self._remember_end(str(message["close_user"]), code, reason)
            self.hub.close_principal(str(message["close_user"]), code, reason)
        elif "close_session" in message:
            self._remember_end(str(message["close_session"]), code, "session ended")
            self.hub.close_session(str(message["close_session"]), code, "session ended")

    def _remember_end(self, key: str, code: int, reason: str) -> None:
        now = time.monotonic()
        ended = self._ended
        ended.pop(key, None)
        ended[key] = (now, code, reason)
        # Oldest first (insertion order): an upgrade takes far less than a minute.
        while ended:
            oldest = next(iter(ended))
            if ended[oldest][0] > now - ENDED_MEMORY:
                break
            del ended[oldest]

    def ended_since(self, principal: str, session: str, since: float) -> tuple[int, str] | None:
        """The close (code, reason) of a member's or session's sockets broadcast after
        `since` (monotonic): a socket whose upgrade began before it was not registered
        yet, so the broadcast missed it."""
        for key in (principal, session):
            end = self._ended.get(key)
            if end is not None and end[0] >= since:
                return end[1], end[2]
        return None

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
