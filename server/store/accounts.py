"""Accounts, invites and sessions.

Keys:
  eh:user:{id}            hash  id handle display_name role pw birthdate created_at suspended
  eh:handle:{handle}      str   user id (handles are stored lowercased)
  eh:users                set   all user ids
  eh:invite:{code}        hash  uses_left expires_at created_by admin created_at
  eh:session:{sha256}     str   user id, expiring
  eh:sessions:{id}        set   the session hashes of a user (to end them all)
"""

from __future__ import annotations

import hashlib
from typing import Any

import redis.asyncio as redis

from server.store.replies import hash_fields, hash_or_none, str_set
from server.store.resp import EngineClient

_SIGNUP = """
local invite = KEYS[1]
if redis.call('EXISTS', invite) == 0 then return 'invite_invalid' end
local left = tonumber(redis.call('HGET', invite, 'uses_left') or '0')
local expires = tonumber(redis.call('HGET', invite, 'expires_at') or '0')
if left <= 0 then return 'invite_used_up' end
if tonumber(ARGV[1]) >= expires then return 'invite_expired' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'handle_taken' end
redis.call('HINCRBY', invite, 'uses_left', -1)
redis.call('SET', KEYS[2], ARGV[2])
local role = 'member'
if redis.call('HGET', invite, 'admin') == '1' then role = 'admin' end
redis.call('HSET', KEYS[3], 'id', ARGV[2], 'handle', ARGV[3], 'display_name', ARGV[4],
  'pw', ARGV[5], 'birthdate', ARGV[6], 'created_at', ARGV[7], 'role', role,
  'suspended', '0', 'invited_by', redis.call('HGET', invite, 'created_by') or '')
redis.call('SADD', KEYS[4], ARGV[2])
return 'ok'
"""


# A key holding a user id -> that user's hash, in one round trip (sessions, handles).
_USER_VIA = """
local id = redis.call('GET', KEYS[1])
if not id then return nil end
return redis.call('HGETALL', 'eh:user:' .. id)
"""


def _as_dict(flat: list[str] | None) -> dict[str, str] | None:
    if not flat:
        return None
    return dict(zip(flat[::2], flat[1::2], strict=True))


def session_key_of(token: str) -> str:
    # Only a hash of the token is stored: a leaked dump does not leak live sessions.
    return hashlib.sha256(token.encode()).hexdigest()


class AccountStore:
    def __init__(self, client: redis.Redis, engine: EngineClient) -> None:
        self.r = client
        self.engine = engine
        self._signup = client.register_script(_SIGNUP)
        # Every authenticated request and socket resolves a session: the lean client.
        self._user_via = engine.script(_USER_VIA)

    async def create_invite(
        self, code: str, uses: int, expires_at: float, created_by: str, *, admin: bool, now: float
    ) -> None:
        key = f"eh:invite:{code}"
        await self.r.hset(key, mapping={
            "uses_left": uses, "expires_at": repr(expires_at), "created_by": created_by,
            "admin": "1" if admin else "0", "created_at": repr(now)})  # fmt: skip
        # Keep spent invites a while past expiry so "expired" stays distinguishable.
        await self.r.expireat(key, int(expires_at) + 30 * 86400)

    async def get_invite(self, code: str) -> dict[str, str] | None:
        return hash_or_none(await self.r.hgetall(f"eh:invite:{code}"))

    async def signup(self, invite: str, user: dict[str, Any], now: float) -> str:
        """Consume an invite and create the user atomically; returns 'ok' or a refusal code."""
        keys = [f"eh:invite:{invite}", f"eh:handle:{user['handle']}",
                f"eh:user:{user['id']}", "eh:users"]  # fmt: skip
        args = [repr(now), user["id"], user["handle"], user["display_name"], user["pw"],
                user["birthdate"], user["created_at"]]  # fmt: skip
        return str(await self._signup(keys=keys, args=args))

    async def user(self, user_id: str) -> dict[str, str] | None:
        return hash_or_none(await self.r.hgetall(f"eh:user:{user_id}"))

    async def users(self, user_ids: list[str]) -> list[dict[str, str] | None]:
        if not user_ids:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for uid in user_ids:
                pipe.hgetall(f"eh:user:{uid}")
            return [d or None for d in await pipe.execute()]

    async def ids_by_handle(self, handles: list[str]) -> dict[str, str]:
        """The member id of each of these lower-cased handles that exists (mentions)."""
        if not handles:
            return {}
        ids = await self.engine.calls([("GET", f"eh:handle:{h}") for h in handles])
        return {h: uid for h, uid in zip(handles, ids, strict=True) if uid}

    async def user_by_handle(self, handle: str) -> dict[str, str] | None:
        return _as_dict(await self._user_via(keys=[f"eh:handle:{handle}"]))

    async def session_record(self, token: str) -> dict[str, str] | None:
        """The user a session token belongs to, or None."""
        return _as_dict(await self._user_via(keys=[f"eh:session:{session_key_of(token)}"]))

    async def count_users(self) -> int:
        return int(await self.r.scard("eh:users"))

    async def set_fields(self, user_id: str, **fields: str) -> None:
        await self.r.hset(f"eh:user:{user_id}", mapping=hash_fields(fields))

    async def create_session(self, token: str, user_id: str, ttl: int) -> None:
        key = session_key_of(token)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.set(f"eh:session:{key}", user_id, ex=ttl)
            pipe.sadd(f"eh:sessions:{user_id}", key)
            await pipe.execute()

    async def end_session(self, token: str, user_id: str) -> None:
        key = session_key_of(token)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.delete(f"eh:session:{key}")
            pipe.srem(f"eh:sessions:{user_id}", key)
            await pipe.execute()

    async def end_all_sessions(self, user_id: str) -> None:
        keys = str_set(await self.r.smembers(f"eh:sessions:{user_id}"))
        async with self.r.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.delete(f"eh:session:{key}")
            pipe.delete(f"eh:sessions:{user_id}")
            await pipe.execute()
