"""The services of one server process, wired once in `create_app` and kept in app state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as redis
from aiohttp import web

from server.bus import RedisBus
from server.domain.errors import RateLimited
from server.hub import Hub
from server.protocol import CloseCode
from server.services.accounts import AccountService
from server.services.common import Clock, User
from server.settings import Settings
from server.store.accounts import session_key_of
from server.store.ratelimit import RateLimitStore


@dataclass
class Services:
    settings: Settings
    client: redis.Redis
    bus: RedisBus
    hub: Hub
    clock: Clock
    accounts: AccountService
    ratelimits: RateLimitStore
    # Filled by the feature modules as they are wired (topics, echoes, graph, ...).
    extra: dict[str, Any] = field(default_factory=dict)

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

    async def close_user(self, user_id: str, code: int) -> None:
        """Close the user's sockets on every process."""
        await self.bus.publish_control({"close_user": user_id, "code": code})

    def on_control(self, message: dict[str, Any]) -> None:
        code = int(message.get("code", CloseCode.SESSION_ENDED))
        if "close_user" in message:
            self.hub.close_principal(str(message["close_user"]), code, "account closed")
        elif "close_session" in message:
            self.hub.close_session(str(message["close_session"]), code, "session ended")


SERVICES = web.AppKey("services", Services)
