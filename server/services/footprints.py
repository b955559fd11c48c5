"""Footprints (mixi's ashiato): record signed-in profile views, list them to the owner,
and tell the owner live — at most once per visitor per hour, decided in the engine.

Hooks into `GraphService.on_profile_view`; owns nothing of the graph itself.
"""

from __future__ import annotations

from typing import Any

from server.domain.footprints import FOOTPRINT_NOTIFY_WINDOW, MAX_VISITORS, leaves_footprint
from server.services.accounts import AccountService
from server.services.common import Clock, User, iso
from server.services.graph import GraphService
from server.services.publish import Publisher
from server.store.footprints import FootprintStore


class FootprintService:
    def __init__(
        self, accounts: AccountService, graph: GraphService, store: FootprintStore,
        publisher: Publisher, clock: Clock,
    ) -> None:  # fmt: skip
        self.accounts = accounts
        self.graph = graph
        self.store = store
        self.publisher = publisher
        self.clock = clock

    async def on_profile_view(self, visitor: User, owner: User) -> None:
        """Leave a footprint if the rules say so, and notify the owner if it is time."""
        if visitor.id == owner.id:
            return
        if not leaves_footprint(visitor.id, owner.id,
                                await self.graph.relation(visitor.id, owner.id)):  # fmt: skip
            return
        now = self.clock()
        notify = await self.store.record_visit(
            owner.id, visitor.id, int(now * 1000), int(FOOTPRINT_NOTIFY_WINDOW * 1000),
            MAX_VISITORS,
        )  # fmt: skip
        if notify:
            await self.publisher.notify(
                owner.id, "footprint", {"visitor": visitor.brief(), "at": iso(now)}
            )

    async def visitors(self, owner: User) -> dict[str, Any]:
        """The owner's recent visitors: latest visit each, newest first, up to 50.

        A block placed after a visit hides that visitor's footprint too (either way).
        """
        recent = await self.store.visitors(owner.id, MAX_VISITORS)
        circle = await self.graph.circle(owner.id)
        hidden = circle.blocked_either_way
        recent = [(uid, ms) for uid, ms in recent if uid not in hidden]
        users = await self.accounts.records([uid for uid, _ in recent])
        items = [{"visitor": {"handle": u["handle"], "display_name": u["display_name"]},
                  "at": iso(ms / 1000)}
                 for (_, ms), u in zip(recent, users, strict=True) if u]  # fmt: skip
        return {"items": items, "next": None}
