"""The social graph: profiles, follow, block, mute, and the `home`/`user:` topics.

A live `home` subscription is fed by the channels `user:{id}` of the member and of each
followed, unmuted member; graph changes widen or narrow it on every process through a
control message, so a new follow shows up live without a resubscribe.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from server.bus import RedisBus
from server.domain.errors import DomainError, Forbidden, NotFound
from server.domain.visibility import Relation, can_view_profile, check_can_follow
from server.services import control
from server.services.accounts import AccountService
from server.services.common import Clock, User, iso
from server.services.control import RebindHome
from server.services.publish import Publisher
from server.services.topics import Resolution
from server.store.graph import Circle, GraphStore, Reach

ProfileHook = Callable[[User, User], Awaitable[None]]

# Authors whose reach a process keeps (a few KB each at most).
REACH_CACHE_SIZE = 10_000


def user_channel(user_id: str) -> str:
    return f"user:{user_id}"


class GraphService:
    def __init__(
        self, accounts: AccountService, store: GraphStore, publisher: Publisher, bus: RedisBus,
        clock: Clock,
    ) -> None:  # fmt: skip
        self.accounts = accounts
        self.store = store
        self.publisher = publisher
        self.bus = bus
        self.clock = clock
        # Called after a signed-in profile view (footprints hook in here).
        self.on_profile_view: list[ProfileHook] = []
        self._reach: dict[tuple[str, bool], Reach] = {}

    async def circle(self, user_id: str) -> Circle:
        return await self.store.circle(user_id)

    async def relation(self, viewer: str, other: str) -> Relation:
        return await self.store.relation(viewer, other)

    async def sampled_following(self, users: list[str], count: int) -> list[list[str]]:
        """Whom each of `users` follows: all of it, or `count` of it drawn at random."""
        return await self.store.sampled_following(users, count)

    async def reach(self, author_id: str, *, friends: bool, fresh: bool = False) -> Reach:
        """An author's reach, as this process last loaded it unless `fresh`.

        The cached one may be stale: use it only with its `guard` (see
        Publisher.publish_guarded), and load a fresh one when the guard fails. Posting
        then needs no read before its one write.
        """
        key = (author_id, friends)
        cached = None if fresh else self._reach.get(key)
        if cached is not None:
            return cached
        reach = await self.store.reach(author_id, friends=friends)
        cache = self._reach
        cache.pop(key, None)
        if len(cache) >= REACH_CACHE_SIZE:
            del cache[next(iter(cache))]  # the least recently loaded
        cache[key] = reach
        return reach

    async def profile(self, viewer: User, handle: str, *, visit: bool = True) -> dict[str, Any]:
        target = await self.accounts.user_by_handle(handle)
        rel = await self.store.relation(viewer.id, target.id)
        if not can_view_profile(viewer.id, target.id, rel):
            raise Forbidden("blocked", "this member's profile is not available to you")
        followers, following = await self.store.counts(target.id)
        if visit:
            for hook in self.on_profile_view:
                await hook(viewer, target)
        shown: dict[str, Any] = {}
        if viewer.role == "admin":
            shown["role"] = target.role  # so an admin can appoint or revoke a moderator
        return {
            **shown,
            "id": target.id, "handle": target.handle, "display_name": target.display_name,
            "created_at": target.created_at, **target.presentation(),
            "followers": followers, "following": following,
            "relationship": {
                "following": rel.follows, "followed_by": rel.followed_by,
                "friends": rel.friends, "blocking": rel.blocks, "muting": rel.mutes,
            },
        }  # fmt: skip

    async def _target(self, viewer: User, handle: str) -> User:
        target = await self.accounts.user_by_handle(handle)
        if target.id == viewer.id:
            raise DomainError("cannot_target_self", "that is you", field="handle")
        return target

    async def follow(self, viewer: User, handle: str) -> dict[str, Any]:
        target = await self.accounts.user_by_handle(handle)
        check_can_follow(viewer.id, target.id, await self.store.relation(viewer.id, target.id))
        outcome = await self.store.follow(viewer.id, target.id)
        if outcome < 0:
            raise Forbidden("blocked", "you cannot follow this member", field="handle")
        if outcome == 1:
            circle = await self.store.circle(viewer.id)
            if target.id not in circle.muting:
                await self._rebind_home(viewer.id, add=[user_channel(target.id)])
            await self.publisher.notify(
                target.id, "follow", {"by": viewer.brief(), "at": iso(self.clock())}
            )
        return await self.profile(viewer, handle, visit=False)

    async def unfollow(self, viewer: User, handle: str) -> dict[str, Any]:
        target = await self._target(viewer, handle)
        if await self.store.unfollow(viewer.id, target.id):
            await self._rebind_home(viewer.id, remove=[user_channel(target.id)])
        return await self.profile(viewer, handle, visit=False)

    async def block(self, viewer: User, handle: str) -> dict[str, Any]:
        target = await self._target(viewer, handle)
        await self.store.block(viewer.id, target.id)
        await self._rebind_home(viewer.id, remove=[user_channel(target.id)])
        await self._rebind_home(target.id, remove=[user_channel(viewer.id)])
        return await self.profile(viewer, handle, visit=False)

    async def unblock(self, viewer: User, handle: str) -> dict[str, Any]:
        target = await self._target(viewer, handle)
        await self.store.unblock(viewer.id, target.id)
        return await self.profile(viewer, handle, visit=False)

    async def mute(self, viewer: User, handle: str, on: bool) -> dict[str, Any]:
        target = await self._target(viewer, handle)
        await self.store.set_mute(viewer.id, target.id, on)
        if on:
            await self._rebind_home(viewer.id, remove=[user_channel(target.id)])
        elif (await self.store.relation(viewer.id, target.id)).follows:
            await self._rebind_home(viewer.id, add=[user_channel(target.id)])
        return await self.profile(viewer, handle, visit=False)

    async def _rebind_home(
        self, user_id: str, add: list[str] | None = None, remove: list[str] | None = None
    ) -> None:
        message = RebindHome(user_id, tuple(add or ()), tuple(remove or ()))
        await self.bus.publish_control(control.encode(message))

    # --- topics ------------------------------------------------------------------------

    async def resolve_home(self, user: User, _topic: str, _flt: Any) -> Resolution:
        circle = await self.store.circle(user.id)
        followed = circle.following - circle.muting - circle.blocked_either_way
        return [user_channel(user.id), *(user_channel(u) for u in sorted(followed))], None

    async def resolve_user(self, user: User, handle: str, _flt: Any) -> Resolution:
        key = handle.lower()
        found = await self.store.handle_for_viewer(user.id, key) if 3 <= len(key) <= 20 else None
        if found is None:
            raise NotFound("user_not_found", f"no member with the handle {handle[:40]!r}")
        target_id, blocked_by = found
        if not can_view_profile(user.id, target_id, Relation(blocked_by=blocked_by)):
            raise Forbidden("forbidden", "you may not follow this member's topic")
        return [user_channel(target_id)], None
