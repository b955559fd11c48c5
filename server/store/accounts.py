"""Accounts, invites and sessions.

Keys:
  eh:user:{id}            hash  id handle display_name role pw birthdate created_at suspended
                                invited_by bio bio_segments (JSON)
  eh:handle:{handle}      str   user id (handles are stored lowercased)
  eh:users                set   all user ids
  eh:invite:{code}        hash  uses_left expires_at created_by admin created_at befriend uses
  eh:invites:{id}         zset  codes of the invites a member made -> created ms
  eh:session:{sha256}     str   user id, expiring
  eh:sessions:{id}        set   the session hashes of a user (to end them all)
"""

from __future__ import annotations

import hashlib
from typing import Any

import redis.asyncio as redis

from server.store.replies import hash_fields, hash_or_none, str_list, str_set
from server.store.resp import Arg, EngineClient

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


INVITES_KEPT = 100

# A password change: the new hash, if the old one is still the one that was checked
# (two changes at once cannot both win), and every session of the member but this one
# ended, in one step (a login racing it cannot keep a session made with the old one).
# Returns the ended session hashes, or false when the hash changed meanwhile.
_CHANGE_PASSWORD = """
if redis.call('HGET', KEYS[1], 'pw') ~= ARGV[1] then return false end
redis.call('HSET', KEYS[1], 'pw', ARGV[2])
local ended = {}
for _, key in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if key ~= ARGV[3] then
    redis.call('DEL', 'eh:session:' .. key)
    redis.call('SREM', KEYS[2], key)
    ended[#ended + 1] = key
  end
end
return ended
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
        self._change_password = engine.script(_CHANGE_PASSWORD)
        # Every authenticated request and socket resolves a session: the lean client.
        self._user_via = engine.script(_USER_VIA)

    async def create_invite(
        self, code: str, uses: int, expires_at: float, created_by: str, *, admin: bool, now: float,
        befriend: bool = False,
    ) -> None:  # fmt: skip
        key = f"eh:invite:{code}"
        # Keep spent invites a while past expiry so "expired" stays distinguishable.
        until = int(expires_at) + 30 * 86400
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={
                "uses_left": uses, "uses": uses, "expires_at": repr(expires_at),
                "created_by": created_by, "admin": "1" if admin else "0",
                "created_at": repr(now), "befriend": "1" if befriend else "0"})  # fmt: skip
            pipe.expireat(key, until)
            if created_by:
                pipe.zadd(f"eh:invites:{created_by}", {code: int(now * 1000)})
                # The list page shows at most the newest 100; older codes still work.
                pipe.zremrangebyrank(f"eh:invites:{created_by}", 0, -(INVITES_KEPT + 1))
            await pipe.execute()

    async def invites_of(self, user_id: str, count: int) -> list[tuple[str, dict[str, str]]]:
        """The member's newest `count` invites still kept, as (code, record); codes whose
        record is gone (long expired) are forgotten on the way."""
        codes = str_list(await self.r.zrevrange(f"eh:invites:{user_id}", 0, count - 1))
        if not codes:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for code in codes:
                pipe.hgetall(f"eh:invite:{code}")
            records = await pipe.execute()
        gone = [code for code, rec in zip(codes, records, strict=True) if not rec]
        if gone:
            await self.r.zrem(f"eh:invites:{user_id}", *gone)
        return [(code, rec) for code, rec in zip(codes, records, strict=True) if rec]

    async def revoke_invite(self, code: str, user_id: str) -> bool:
        """Delete one of the member's invites; False if it is not theirs (or gone)."""
        key = f"eh:invite:{code}"
        if await self.r.hget(key, "created_by") != user_id:
            return False
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.zrem(f"eh:invites:{user_id}", code)
            await pipe.execute()
        return True

    async def update_profile(
        self, user_id: str, fields: dict[str, str], along: list[tuple[Arg, ...]]
    ) -> None:
        """Set profile fields, with `along` (the search index's changes) in the same
        transaction."""
        flat = [part for item in fields.items() for part in item]
        await self.engine.transaction([("HSET", f"eh:user:{user_id}", *flat), *along])

    async def change_password(
        self, user_id: str, checked_hash: str, new_hash: str, keep_session: str
    ) -> list[str] | None:
        """Replace the password hash if it is still `checked_hash`, and end every session
        but `keep_session` (a session hash); the ended ones, or None if it changed."""
        ended = await self._change_password(
            keys=[f"eh:user:{user_id}", f"eh:sessions:{user_id}"],
            args=[checked_hash, new_hash, keep_session],
        )
        return None if ended is None else [str(k) for k in ended]

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
