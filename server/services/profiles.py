"""Profiles: editing one's display name, bio and avatar; changing one's password; the
friendships an invite makes.

A profile change is one engine transaction (the fields and the member's search keys),
then one `profile.updated` event on `user:{id}` (it reaches open profile pages and the
followers' `home`, never a member blocked either way) and one control message so every
process posts the member's next socket messages under the new name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

from server.domain import profiles as rules
from server.domain.accounts import hash_password, invite_befriends, verify_password
from server.domain.errors import Conflict, DomainError
from server.domain.search import member_keys
from server.hub import Audience
from server.services import control
from server.services.accounts import AccountService
from server.services.common import Clock, User, iso
from server.services.control import CloseSession
from server.services.graph import GraphService, user_channel
from server.services.publish import Publisher
from server.store.accounts import session_key_of
from server.store.search import SearchStore

# Takes a token from a named rate limit or raises RateLimited (Services.limit).
Limiter = Callable[[str, str], Awaitable[None]]
# Publishes a control message to every process (RedisBus.publish_control).
ControlPublisher = Callable[[dict[str, Any]], Awaitable[None]]

# Members whose newer profile this process remembers for their open sockets.
RENAMED_KEPT = 10_000


class AvatarSource(Protocol):
    """What profiles need of media (provided by the media feature): whether a media id
    is an image of the member's own, and the avatar object a profile then shows."""

    async def avatar(self, owner: User, media_id: str) -> dict[str, Any]:
        """The avatar for `media_id`, or a DomainError (not theirs, not an image)."""
        ...

    async def drop_avatar(self, owner: User) -> None:
        """The member went back to no avatar: their last one may go."""
        ...


class ProfileService:
    def __init__(
        self, accounts: AccountService, graph: GraphService, search: SearchStore,
        publisher: Publisher, publish_control: ControlPublisher, avatars: AvatarSource,
        clock: Clock, *, password_cost: int,
    ) -> None:  # fmt: skip
        self.accounts = accounts
        self.graph = graph
        self.search = search
        self.publisher = publisher
        self.publish_control = publish_control
        self.clock = clock
        self.password_cost = password_cost
        self.avatars = avatars
        # The latest profile of members who changed it while their sockets are open
        # here: a socket keeps the User it opened with, and posts carry the author's name.
        self._renamed: dict[str, tuple[str, str]] = {}

    # --- profile -----------------------------------------------------------------------

    async def update(self, user: User, body: object) -> dict[str, Any]:
        """Apply a `PATCH /api/me`; answers the member as `GET /api/me` does."""
        patch = rules.validate_profile_patch(body)
        record = await self.accounts.record(user.id)
        if record is None:
            raise DomainError("user_not_found", "your account is gone")
        current = User.from_record(record)
        fields: dict[str, str] = {}
        if patch.display_name is not None:
            fields["display_name"] = patch.display_name
        if patch.bio is not None:
            fields["bio"] = patch.bio.text
            mentioned = rules.mention_candidates(patch.bio.text)
            members = await self._existing_handles(mentioned)
            segments = rules.bio_segments(patch.bio.text, members) if patch.bio.text else []
            fields["bio_segments"] = orjson.dumps(segments).decode()
        if patch.avatar is not None:
            fields.update(await self._avatar_fields(current, patch.avatar))
        name = fields.get("display_name", current.display_name)
        along = SearchStore.member_changes(
            user.id,
            member_keys(current.handle, current.display_name),
            member_keys(current.handle, name),
        )
        await self.accounts.update_profile(user.id, fields, along)
        updated = User.from_record({**record, **fields})
        shown = {"handle": updated.handle, "display_name": updated.display_name,
                 **updated.presentation(), "at": iso(self.clock())}  # fmt: skip
        await self._announce(updated, shown)
        return updated.to_wire()

    async def _existing_handles(self, handles: frozenset[str]) -> frozenset[str]:
        if not handles:
            return frozenset()
        return frozenset(await self.accounts.ids_by_handle(sorted(handles)))

    async def _avatar_fields(self, user: User, media_id: str) -> dict[str, str]:
        if media_id == "":
            await self.avatars.drop_avatar(user)
            return {"avatar": ""}
        avatar = await self.avatars.avatar(user, media_id)
        return {"avatar": orjson.dumps(avatar).decode()}

    async def _announce(self, user: User, shown: dict[str, Any]) -> None:
        reach = await self.graph.reach(user.id, friends=False, fresh=True)
        await self.publisher.publish(
            "profile.updated", shown,
            [(user_channel(user.id), Audience(None, reach.blocked_either_way))],
        )  # fmt: skip
        await self.publish_control({"profile": user.id, "display_name": user.display_name,
                                    "avatar": user.avatar})  # fmt: skip

    def on_control(self, message: dict[str, Any]) -> bool:
        """Take a profile change broadcast by any process (True if it was one)."""
        user_id = message.get("profile")
        if not isinstance(user_id, str):
            return False
        renamed = self._renamed
        renamed.pop(user_id, None)
        if len(renamed) >= RENAMED_KEPT:
            del renamed[next(iter(renamed))]
        renamed[user_id] = (str(message.get("display_name", "")), str(message.get("avatar", "")))
        return True

    def current(self, user: User) -> User:
        """`user` (as a socket opened with it) under the display name and avatar it has
        now."""
        now = self._renamed.get(user.id)
        if now is None or now == (user.display_name, user.avatar):
            return user
        return dataclasses.replace(user, display_name=now[0], avatar=now[1])

    # --- password ----------------------------------------------------------------------

    async def change_password(
        self, user: User, token: str, body: object, limit: Limiter | None = None
    ) -> dict[str, Any]:
        """Change the password: the old one is required (every attempt takes from the
        `passwords` limit, so guessing it is slow); every other session ends and its
        sockets close with 4001 on every process; this one stays."""
        change = rules.validate_password_change(body)
        if limit is not None:
            await limit("passwords", user.id)
        record = await self.accounts.record(user.id)
        stored = record.get("pw", "") if record else ""
        hashes = self.accounts.hashes  # the bounded pool every password hash shares
        if not await hashes.run(verify_password, change.old, stored):
            raise DomainError("wrong_password", "the current password is not right", field="old")
        new_hash = await hashes.run(hash_password, change.new, cost=self.password_cost)
        ended = await self.accounts.change_password(
            user.id, stored, new_hash, session_key_of(token)
        )
        if ended is None:
            raise Conflict("password_changed", "your password was changed meanwhile; sign in "
                           "again", field="old")  # fmt: skip
        for session in ended:
            await self.publish_control(control.encode(CloseSession(session)))
        return {"ok": True, "sessions_ended": len(ended)}

    # --- sign-up -----------------------------------------------------------------------

    async def on_signup(self, member: User, invite: dict[str, str]) -> None:
        """Index the new member for search, and befriend the invite's maker."""
        await self.search.apply(
            SearchStore.member_changes(member.id, (), member_keys(member.handle,
                                                                  member.display_name))
        )  # fmt: skip
        inviter_id = invite_befriends(invite)
        if not inviter_id:
            return
        record = await self.accounts.record(inviter_id)
        if record is None:
            return
        inviter = User.from_record(record)
        if inviter.suspended:
            return
        # Both follows are the ordinary ones: the inviter gets the live `follow`, and
        # both `home` subscriptions widen on every process.
        await self.graph.follow(member, inviter.handle)
        await self.graph.follow(inviter, member.handle)
