"""Accounts: invites, sign-up, sessions, roles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from server.domain import accounts as rules
from server.domain.errors import Conflict, DomainError, Forbidden, NotFound, Unauthenticated
from server.services.common import Clock, User, iso, new_id, new_secret
from server.services.logins import HashPool, LoginGuard
from server.store.accounts import AccountStore, session_key_of
from server.store.resp import Arg

SignupHook = Callable[[User, dict[str, str]], Awaitable[None]]
INVITES_SHOWN = 100

# Verifying against this keeps a login for an unknown handle as slow as a real one.
_DUMMY_HASH = rules.hash_password("not a real password", cost=2**10)


class AccountService:
    def __init__(
        self, store: AccountStore, clock: Clock, *, password_cost: int, session_ttl: int,
        hashes: HashPool | None = None, logins: LoginGuard | None = None,
    ) -> None:  # fmt: skip
        self.store = store
        self.clock = clock
        self.password_cost = password_cost
        self.session_ttl = session_ttl
        # Called after each sign-up with the new member and the invite's record (the
        # search index and befriending hook in here).
        self.on_signup: list[SignupHook] = []
        # Every password hash runs here (sign-up, sign-in, password change).
        self.hashes = hashes if hashes is not None else HashPool()
        # Sign-in backoff per handle and address; None: no limit (the setting is off).
        self.logins = logins
        # Verifying against this keeps a login for an unknown handle as slow as a real
        # one: the same cost as real hashes (a 2**10 dummy made unknown handles 16 times
        # faster to refuse at the default 2**14, which told them apart).
        self._dummy_hash = (
            _DUMMY_HASH if password_cost == 2**10
            else rules.hash_password("not a real password", cost=password_cost)
        )  # fmt: skip

    async def create_invite(
        self, by: User | None, uses: object, days: object, base_url: str, *, admin: bool = False,
        befriend: object = None,
    ) -> dict[str, Any]:  # fmt: skip
        count, lifetime = rules.validate_invite_request(uses, days)
        # Only a member's invite can befriend (its maker); the CLI's admin invites never.
        friends = rules.validate_befriend(befriend) and by is not None and not admin
        code = new_secret()
        now = self.clock()
        expires_at = now + lifetime * 86400
        await self.store.create_invite(
            code, count, expires_at, by.id if by else "", admin=admin, now=now, befriend=friends
        )
        return {"code": code, "url": f"{base_url}/join/{code}", "uses_left": count,
                "uses": count, "expires_at": iso(expires_at), "created_at": iso(now),
                "befriend": friends}  # fmt: skip

    async def invites(self, user: User, base_url: str) -> dict[str, Any]:
        """The member's invites, newest first, with the uses left."""
        now = self.clock()
        items = []
        for code, rec in await self.store.invites_of(user.id, INVITES_SHOWN):
            expires_at = float(rec.get("expires_at", "0"))
            items.append({
                "code": code, "url": f"{base_url}/join/{code}",
                "uses_left": int(rec.get("uses_left", "0")),
                "uses": int(rec.get("uses", rec.get("uses_left", "0"))),
                "expires_at": iso(expires_at), "created_at": iso(float(rec.get("created_at", "0"))),
                "befriend": rules.invite_befriends(rec) != "", "expired": now >= expires_at,
            })  # fmt: skip
        return {"items": items, "next": None}

    async def revoke_invite(self, user: User, code: str) -> dict[str, Any]:
        """Revoke one of the member's invites: it can no longer be used."""
        if not (0 < len(code) <= 200) or not await self.store.revoke_invite(code, user.id):
            raise NotFound("invite_not_found", "you have no invite with this code")
        return {"code": code, "revoked": True}

    async def admin_invite_if_empty(self, base_url: str) -> str | None:
        """The one-time admin link printed on a start with no accounts."""
        if await self.store.count_users() > 0:
            return None
        invite = await self.create_invite(None, 1, 14, base_url, admin=True)
        return str(invite["url"])

    async def signup(self, body: object) -> tuple[User, str]:
        data = rules.require_object(body)
        invite = data.get("invite")
        if not isinstance(invite, str) or not invite or len(invite) > 200:
            raise DomainError("invalid_invite", "an invite code is required", field="invite")
        handle = rules.normalize_handle(data.get("handle"))
        password = rules.validate_password(data.get("password"))
        display_name = rules.validate_display_name(data.get("display_name"), handle)
        now = self.clock()
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        birthdate = rules.validate_birthdate(data.get("birthdate"), today)
        # Refuse a bad invite before spending the hashing time on it.
        record = await self.store.get_invite(invite)
        if record is None:
            raise DomainError("invite_invalid", "this invite code is not valid", field="invite")
        rules.check_invite_usable(int(record["uses_left"]), float(record["expires_at"]), now)
        pw = await self.hashes.run(rules.hash_password, password, cost=self.password_cost)
        user = {"id": new_id(), "handle": handle, "display_name": display_name, "pw": pw,
                "birthdate": birthdate.isoformat(), "created_at": iso(now)}  # fmt: skip
        outcome = await self.store.signup(invite, user, now)
        if outcome == "handle_taken":
            raise Conflict("handle_taken", f"the handle {handle!r} is taken", field="handle")
        if outcome == "invite_invalid":
            raise DomainError("invite_invalid", "this invite code is not valid", field="invite")
        if outcome == "invite_used_up":
            raise DomainError("invite_used_up", "this invite has been used up", field="invite")
        if outcome == "invite_expired":
            raise DomainError("invite_expired", "this invite has expired", field="invite")
        created = await self.store.user(user["id"])
        assert created is not None
        member = User.from_record(created)
        for hook in self.on_signup:
            await hook(member, record)
        return member, await self._new_session(user["id"])

    async def login(self, body: object, address: str | None = None) -> tuple[User, str]:
        """Sign in; `address` is the client's (counted by the sign-in limits)."""
        data = rules.require_object(body)
        raw_handle, password = data.get("handle"), data.get("password")
        if not isinstance(raw_handle, str) or not isinstance(password, str):
            raise DomainError("invalid_credentials", "handle and password are required")
        record = None
        if 3 <= len(raw_handle) <= 20 and raw_handle.isascii():
            record = await self.store.user_by_handle(raw_handle.lower())
        stored = record["pw"] if record else self._dummy_hash
        # Unknown handles are counted too: a limit only for real ones would name them.
        counted = raw_handle.lower()[:40]
        if self.logins is not None:
            await self.logins.begin(counted, address)
        ok = await self.hashes.run(rules.verify_password, password[:1024], stored)
        if record is None or not ok:
            raise Unauthenticated("invalid_credentials", "wrong handle or password")
        if self.logins is not None:
            await self.logins.succeeded(counted, address)
        user = User.from_record(record)
        if user.suspended:
            raise Forbidden("suspended", "this account is suspended")
        return user, await self._new_session(user.id)

    async def _new_session(self, user_id: str) -> str:
        token = new_secret() + new_secret()
        await self.store.create_session(token, user_id, self.session_ttl)
        return token

    async def authenticate(self, token: str | None) -> User | None:
        if not token or len(token) > 200:
            return None
        record = await self.store.session_record(token)
        if record is None:
            return None
        user = User.from_record(record)
        return None if user.suspended else user

    async def logout(self, token: str, user: User) -> None:
        await self.store.end_session(token, user.id)

    @staticmethod
    def session_key(token: str) -> str:
        """The key a session is known by to the hub and in control messages (not the
        token itself)."""
        return session_key_of(token)

    async def ids_by_handle(self, handles: list[str]) -> dict[str, str]:
        """The member id of each of these lower-cased handles that exists."""
        return await self.store.ids_by_handle(handles) if handles else {}

    # --- members' records, for the other services (the store stays this service's own) --

    async def record(self, user_id: str) -> dict[str, str] | None:
        return await self.store.user(user_id)

    async def records(self, user_ids: list[str]) -> list[dict[str, str] | None]:
        """Each member's record, in order (None where there is none)."""
        return await self.store.users(user_ids)

    async def update_profile(
        self, user_id: str, fields: dict[str, str], along: list[tuple[Arg, ...]]
    ) -> None:
        """Set profile fields, with `along` (the search index's changes) in the same
        transaction."""
        await self.store.update_profile(user_id, fields, along)

    async def change_password(
        self, user_id: str, checked_hash: str, new_hash: str, keep_session: str
    ) -> list[str] | None:
        """Replace the password hash if it is still `checked_hash`, and end every session
        but `keep_session` (a session hash); the ended ones, or None if it changed."""
        return await self.store.change_password(user_id, checked_hash, new_hash, keep_session)

    async def end_all_sessions(self, user_id: str) -> None:
        await self.store.end_all_sessions(user_id)

    async def user_by_handle(self, handle: str) -> User:
        key = handle.lower() if isinstance(handle, str) else ""
        record = await self.store.user_by_handle(key) if 3 <= len(key) <= 20 else None
        if record is None:
            raise NotFound("user_not_found", f"no member with the handle {handle!r}")
        return User.from_record(record)

    async def set_role(self, admin: User, handle: str, body: object) -> User:
        if admin.role != "admin":
            raise Forbidden("forbidden", "only admins may change roles")
        role = rules.validate_role_change(rules.require_object(body).get("role"))
        target = await self.user_by_handle(handle)
        if target.role == "admin":
            raise Forbidden("forbidden", "the admin role is changed only with the CLI")
        await self.store.set_fields(target.id, role=role)
        return await self.user_by_handle(handle)
