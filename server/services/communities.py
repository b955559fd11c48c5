"""Communities: create, browse, join (open or by the owner's approval), leave, and the
`community:{id}` topic. Also the `CommunityGate` the echo service asks before a post
goes into, or is shown from, a community.

Live notifications go to one member's `me` each (`community.join_requested` to the
owner, `community.joined` / `community.join_rejected` to the requester); posts in a
community are published by the echo service on `community:{id}`.
"""

from __future__ import annotations

import re
from typing import Any

from server.domain.communities import community_name_key, join_outcome, validate_new_community
from server.domain.errors import Conflict, DomainError, Forbidden, NotFound
from server.domain.visibility import CommunityAccess, can_read_community
from server.services.accounts import AccountService
from server.services.common import Clock, User, iso, new_id
from server.services.notifications import read_channel
from server.services.publish import Publisher
from server.services.topics import Resolution
from server.store.communities import ALL_COMMUNITIES_KEY, CommunityStore, Standing

COMMUNITY_ID = re.compile(r"[0-9a-f]{20}")
PAGE = 25


def community_not_found(field: str | None = None) -> NotFound:
    return NotFound("community_not_found", "no such community", field=field)


def membership(rec: dict[str, str], user_id: str, standing: Standing) -> str:
    """`owner`, `member`, `requested` or `none`: the viewer's standing, for the wire."""
    if rec["owner"] == user_id:
        return "owner"
    if standing.is_member:
        return "member"
    return "requested" if standing.has_pending_request else "none"


class CommunityService:
    def __init__(
        self, accounts: AccountService, store: CommunityStore, publisher: Publisher, clock: Clock
    ) -> None:
        self.accounts = accounts
        self.store = store
        self.publisher = publisher
        self.clock = clock

    # --- shape -------------------------------------------------------------------------

    @staticmethod
    def brief(rec: dict[str, str]) -> dict[str, str]:
        return {"id": rec["id"], "name": rec["name"]}

    @staticmethod
    def wire(rec: dict[str, str], members: int, mine: str) -> dict[str, Any]:
        return {
            "id": rec["id"], "name": rec["name"], "description": rec["description"],
            "join_policy": rec["join_policy"],
            "owner": {"handle": rec["owner_handle"], "display_name": rec["owner_name"]},
            "members": members, "membership": mine, "created_at": rec["created_at"],
        }  # fmt: skip

    async def _wire_for(self, viewer: User, recs: list[dict[str, str]]) -> list[dict[str, Any]]:
        standings = await self.store.standings([r["id"] for r in recs], viewer.id)
        return [self.wire(rec, count, membership(rec, viewer.id, standing))
                for rec, (standing, count) in zip(recs, standings, strict=True)]  # fmt: skip

    async def record(self, community: object, field: str | None = None) -> dict[str, str]:
        """The community's record, or 404 `community_not_found`."""
        if not isinstance(community, str) or not COMMUNITY_ID.fullmatch(community):
            raise community_not_found(field)
        rec = await self.store.get(community)
        if rec is None:
            raise community_not_found(field)
        return rec

    # --- the gate the echo and event services use ---------------------------------------

    async def access(self, user_id: str, community_id: str) -> CommunityAccess:
        rec = await self.record(community_id, "community")
        standing = await self.store.standing(community_id, user_id)
        return CommunityAccess(rec["join_policy"], standing.is_member)

    async def readers(self, community_id: str) -> frozenset[str] | None:
        """None when everyone signed in may read (open), else the member ids."""
        rec = await self.store.get(community_id)
        if rec is not None and rec["join_policy"] == "open":
            return None
        return await self.store.members(community_id)

    async def owner(self, community_id: str) -> str:
        return (await self.record(community_id, "community"))["owner"]

    async def check_readable(self, viewer: User, community: str) -> dict[str, str]:
        """The record if the viewer may read the community; else 404 or 403 `forbidden`."""
        rec = await self.record(community)
        standing = await self.store.standing(community, viewer.id)
        if not can_read_community(CommunityAccess(rec["join_policy"], standing.is_member)):
            raise Forbidden("forbidden", "only members read this community")
        return rec

    # --- use cases ---------------------------------------------------------------------

    async def create(self, owner: User, body: object) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise DomainError("invalid_body", "request body must be a JSON object")
        fields = validate_new_community(body)
        now = self.clock()
        ms = int(now * 1000)
        rec = {
            "id": new_id(), "name": fields.name, "description": fields.description,
            "join_policy": fields.join_policy, "owner": owner.id,
            "owner_handle": owner.handle, "owner_name": owner.display_name,
            "created_at": iso(now),
        }  # fmt: skip
        if not await self.store.create(rec, community_name_key(fields.name), ms):
            raise Conflict("name_taken", "a community with this name exists", field="name")
        return self.wire(rec, 1, "owner")

    async def get(self, viewer: User, community: str) -> dict[str, Any]:
        """Any signed-in member sees a community's card (name, policy, counts), so they
        can ask to join; its posts and member list follow `can_read_community`."""
        rec = await self.record(community)
        return (await self._wire_for(viewer, [rec]))[0]

    async def browse(
        self, viewer: User, before: str | None, limit: int = PAGE, *, mine: bool = False
    ) -> dict[str, Any]:
        """Newest first (`mine`: the viewer's communities, most recently joined first)."""
        if mine:
            offset = _offset(before)
            ids = await self.store.joined_ids(viewer.id, offset, limit + 1)
            more, ids = len(ids) > limit, ids[:limit]
            nxt = str(offset + limit) if more else None
        else:
            if before is not None and not COMMUNITY_ID.fullmatch(before):
                raise DomainError("invalid_cursor", "the cursor is not one this server gave",
                                  "before")  # fmt: skip
            ids = await self.store.page_ids(ALL_COMMUNITIES_KEY, before, limit)
            more, ids = len(ids) > limit, ids[:limit]
            nxt = ids[-1] if more and ids else None
        recs = await self.store.get_many(ids)
        return {"items": await self._wire_for(viewer, recs), "next": nxt}

    async def members(
        self, viewer: User, community: str, before: str | None, limit: int = PAGE
    ) -> dict[str, Any]:
        await self.check_readable(viewer, community)
        offset = _offset(before)
        page = await self.store.member_page(community, offset, limit + 1)
        more, page = len(page) > limit, page[:limit]
        users = await self.accounts.records([uid for uid, _ in page])
        items = [{"user": {"handle": u["handle"], "display_name": u["display_name"]},
                  "joined_at": iso(ms / 1000)}
                 for (_, ms), u in zip(page, users, strict=True) if u]  # fmt: skip
        return {"items": items, "next": str(offset + limit) if more else None}

    async def join(self, user: User, community: str) -> dict[str, Any]:
        rec = await self.record(community)
        standing = await self.store.standing(community, user.id)
        outcome = join_outcome(rec["join_policy"], standing.is_member,
                               standing.has_pending_request)  # fmt: skip
        now = self.clock()
        mode = "join" if outcome == "joined" else "request"
        result = await self.store.join(community, user.id, int(now * 1000), mode)
        # The script decides under races; a lost race gets the same answer as above.
        if result == "missing":
            raise community_not_found()
        if result in ("member", "pending"):
            join_outcome(rec["join_policy"], result == "member", result == "pending")
        if result == "requested":
            await self.publisher.notify(rec["owner"], "community.join_requested", {
                "community": self.brief(rec), "user": user.brief(), "at": iso(now)})  # fmt: skip
        else:
            await self.publisher.notify(user.id, "community.joined", {
                "community": self.brief(rec), "at": iso(now)})  # fmt: skip
        return {"status": result, "community": (await self._wire_for(user, [rec]))[0]}

    async def leave(self, user: User, community: str) -> dict[str, Any]:
        rec = await self.record(community)
        result = await self.store.leave(community, user.id)
        if result == "missing":
            raise community_not_found()
        if result == "owner":
            raise Conflict("owner_cannot_leave", "the owner cannot leave their community")
        if result == "none":
            raise Conflict("not_a_member", "you are not a member of this community")
        return {"status": result, "community": (await self._wire_for(user, [rec]))[0]}

    async def _owned(self, owner: User, community: str) -> dict[str, str]:
        rec = await self.record(community)
        if rec["owner"] != owner.id:
            raise Forbidden("forbidden", "only the owner answers join requests")
        return rec

    async def pending(self, owner: User, community: str) -> dict[str, Any]:
        """The owner's list of pending join requests, oldest first."""
        await self._owned(owner, community)
        requests = await self.store.requests(community)
        users = await self.accounts.records([uid for uid, _ in requests])
        items = [{"user": {"handle": u["handle"], "display_name": u["display_name"]},
                  "at": iso(ms / 1000)}
                 for (_, ms), u in zip(requests, users, strict=True) if u]  # fmt: skip
        return {"items": items, "next": None}

    async def answer(
        self, owner: User, community: str, handle: str, approve: bool
    ) -> dict[str, Any]:
        rec = await self._owned(owner, community)
        requester = await self.accounts.user_by_handle(handle)
        now = self.clock()
        if approve:
            result = await self.store.join(community, requester.id, int(now * 1000), "approve")
            done = result == "joined"
        else:
            done = await self.store.reject(community, requester.id)
        if not done:
            raise NotFound("request_not_found", f"{handle} has no pending request here",
                           field="handle")  # fmt: skip
        kind = "community.joined" if approve else "community.join_rejected"
        await self.publisher.notify(requester.id, kind, {
            "community": self.brief(rec), "at": iso(now)})  # fmt: skip
        # The owner's other devices: their Approve/Decline for this request is stale now.
        # On the channel of read marks (live on `me`, not kept as a notification).
        await self.publisher.publish(kind, {
            "community": self.brief(rec), "user": requester.brief(), "decided": True,
            "at": iso(now)}, [(read_channel(owner.id), None)])  # fmt: skip
        status = "joined" if approve else "rejected"
        return {"status": status, "user": requester.brief(),
                "community": (await self._wire_for(owner, [rec]))[0]}  # fmt: skip

    # --- topics ------------------------------------------------------------------------

    async def resolve_community(self, user: User, community: str, _flt: Any) -> Resolution:
        rec = await self.record(community, "topic")
        standing = await self.store.standing(community, user.id)
        if not can_read_community(CommunityAccess(rec["join_policy"], standing.is_member)):
            raise Forbidden("forbidden", "only members follow this community's topic")
        return [f"community:{community}"], None


def _offset(before: str | None) -> int:
    if before is None:
        return 0
    if not before.isdigit() or len(before) > 7:
        raise DomainError("invalid_cursor", "the cursor is not one this server gave", "before")
    return int(before)
