"""Discovery: searching members and posts, and "people you may know".

Every answer is filtered for the searcher: never a member who blocked them or whom they
blocked, never a post they may not see (the same rule as reading it). Every query has a
bounded cost: members come from one prefix range of the name index (at most
`MEMBER_CANDIDATES` keys), posts from at most `POST_ROUNDS` walks of the rarest term's
index of at most `POST_BUDGET` ids each, suggestions from at most `FRIENDS_CONSIDERED`
friends' follows, sampled to `FOLLOWS_SAMPLED` each.
"""

from __future__ import annotations

from typing import Any

from server.domain import search as rules
from server.domain.errors import DomainError
from server.domain.search import member_keys
from server.services.accounts import AccountService
from server.services.common import User
from server.services.echoes import EchoService, check_cursor
from server.services.graph import GraphService
from server.store.search import SearchStore

MEMBER_CANDIDATES = 200
POST_BUDGET = 2000
POST_ROUNDS = 3
FRIENDS_CONSIDERED = 200
FOLLOWS_SAMPLED = 500
SUGGESTIONS = 20


def _offset(before: str | None) -> int:
    if before is None:
        return 0
    if not before.isdigit() or len(before) > 4:
        raise DomainError("invalid_cursor", "the cursor is not one this server gave", "before")
    return int(before)


def member_card(user: User, *, following: bool) -> dict[str, Any]:
    """A member in a list: as `User.brief` (with the avatar when set), their bio, and
    whether the viewer follows them."""
    return {**user.brief(), "bio": user.bio, "following": following}


class DiscoveryService:
    def __init__(
        self, accounts: AccountService, graph: GraphService, echoes: EchoService,
        store: SearchStore,
    ) -> None:  # fmt: skip
        self.accounts = accounts
        self.graph = graph
        self.echoes = echoes
        self.store = store
        self._backfilled = False

    async def index_existing_members(self) -> int:
        """Index for search the members who signed up before the index existed (once
        per engine, by the first process to search); how many."""
        if not await self.store.claim_backfill():
            return 0
        ids = await self.store.all_user_ids()
        for start in range(0, len(ids), 500):
            records = await self.accounts.records(ids[start : start + 500])
            commands = []
            for record in records:
                if record is not None:
                    user = User.from_record(record)
                    keys = member_keys(user.handle, user.display_name)
                    commands += SearchStore.member_changes(user.id, (), keys)
            await self.store.apply(commands)
        return len(ids)

    async def search(
        self, viewer: User, q: object, type_: str | None, before: str | None, limit: int
    ) -> dict[str, Any]:
        kind = rules.validate_search_type(type_)
        if kind == "members":
            return await self.members(viewer, q, before, limit)
        return await self.posts(viewer, q, before, limit)

    async def members(
        self, viewer: User, q: object, before: str | None, limit: int
    ) -> dict[str, Any]:
        """Members whose handle, display name or a word of it starts with `q` (folded):
        the exact handle first, then handles, then names; people one follows first
        within each; then by handle."""
        prefix = rules.member_query(q)
        offset = _offset(before)
        if not self._backfilled:
            await self.index_existing_members()
            self._backfilled = True
        rows = await self.store.find_members(prefix, MEMBER_CANDIDATES)
        ids = list(dict.fromkeys(uid for _, uid in rows))
        circle = await self.graph.circle(viewer.id)
        hidden = circle.blocked_either_way
        ids = [uid for uid in ids if uid not in hidden]
        ranked: list[tuple[tuple[int, bool, str], User]] = []
        for record in await self.accounts.records(ids):
            if record is None:
                continue
            user = User.from_record(record)
            if user.suspended:
                continue
            rank = self._rank(user, prefix)
            if rank is None:  # the index was behind a rename: no longer a match
                continue
            ranked.append(((rank, user.id not in circle.following, user.handle), user))
        ranked.sort(key=lambda pair: pair[0])
        page = ranked[offset : offset + limit]
        items = [member_card(u, following=u.id in circle.following) for _, u in page]
        more = len(ranked) > offset + limit
        return {"items": items, "next": str(offset + limit) if more else None}

    @staticmethod
    def _rank(user: User, prefix: str) -> int | None:
        if user.handle == prefix:
            return 0
        if user.handle.startswith(prefix):
            return 1
        name = rules.fold(user.display_name)
        if name.startswith(prefix):
            return 2
        if any(key.startswith(prefix) for key in rules.member_keys(user.handle, user.display_name)):
            return 3
        return None

    async def posts(
        self, viewer: User, q: object, before: str | None, limit: int
    ) -> dict[str, Any]:
        """Posts with every word of `q` (Japanese runs as written) that the viewer may
        see, newest first. A page may hold fewer than `limit` posts with a `next`
        cursor: the walk stopped at its budget, and the next page goes on from there."""
        query = rules.post_query(q)
        cursor = check_cursor(before)
        circle = await self.graph.circle(viewer.id)
        chosen: list[dict[str, str]] = []
        for _ in range(POST_ROUNDS):
            ids, cursor = await self.store.find_posts(
                query.terms, cursor, limit + 1 - len(chosen), POST_BUDGET
            )
            recs = await self.echoes.records(ids)
            visible = await self.echoes.visible_posts(viewer, recs, circle)
            chosen.extend(r for r in visible if rules.matches_post(query, r["text"]))
            if cursor is None or len(chosen) > limit:
                break
        page = chosen[:limit]
        nxt = page[-1]["id"] if len(chosen) > limit else cursor
        return {"items": await self.echoes.for_viewer(viewer, page), "next": nxt}

    async def suggestions(self, viewer: User) -> dict[str, Any]:
        """Members followed by several of one's friends, the most followed first: by at
        least two of them (or by one's only friend), never oneself, someone one follows
        already, or anyone blocked either way."""
        circle = await self.graph.circle(viewer.id)
        friends = sorted(circle.friends - circle.blocked_either_way)[:FRIENDS_CONSIDERED]
        if not friends:
            return {"items": [], "next": None}
        follows = await self.graph.sampled_following(friends, FOLLOWS_SAMPLED)
        counts: dict[str, int] = {}
        for followed in follows:
            for uid in followed:
                counts[uid] = counts.get(uid, 0) + 1
        excluded = circle.following | circle.blocked_either_way | {viewer.id}
        enough = min(2, len(friends))
        candidates = sorted(
            ((n, uid) for uid, n in counts.items() if n >= enough and uid not in excluded),
            key=lambda pair: (-pair[0], pair[1]),
        )[: SUGGESTIONS * 2]
        records = await self.accounts.records([uid for _, uid in candidates])
        items = []
        for (n, _), record in zip(candidates, records, strict=True):
            if record is None or record.get("suspended") == "1":
                continue
            items.append({**member_card(User.from_record(record), following=False),
                          "friends": n})  # fmt: skip
            if len(items) == SUGGESTIONS:
                break
        return {"items": items, "next": None}
