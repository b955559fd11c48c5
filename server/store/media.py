"""Media records, their files' reference sets, and the claims that attach them.

Keys:
  eh:media:{id}        hash  id owner type alt width height blurhash duration large small
                             post (the post it is attached to, or "") avatar ("1" when it
                             is someone's avatar; avatar_file is its square rendition)
                             created_ms
  eh:media:pending     zset  media id -> uploaded ms (unattached: swept after 24 h)
  eh:media:dropped     zset  media id -> dropped ms (its post was deleted, or it was
                             replaced as an avatar: swept after a grace period)
  eh:file:{name}       set   the media ids whose renditions are the file `name`; the file
                             is deleted when the last one goes (files are content-
                             addressed, so two uploads of one picture share them)
  eh:filedel:{name}    str   a deletion of that file in progress (set with the last SREM,
                             cleared once the file is gone; a new upload of the same bytes
                             waits for it rather than have its fresh copy deleted)
  eh:media:key         str   the secret of the keyed hash that names files (hex)
  eh:user:{id}         hash  avatar_media (the media id of the member's avatar; the
                             profile's own `avatar` field is written by server.services.profiles)
Post deletion marks the post's media dropped (server.store.echoes, field media_ids).
"""

from __future__ import annotations

import secrets

import redis.asyncio as redis

from server.store.replies import hash_or_none

PENDING = "eh:media:pending"
DROPPED = "eh:media:dropped"
KEY = "eh:media:key"


def media_key(media_id: str) -> str:
    return f"eh:media:{media_id}"


# KEYS: the media hash. ARGV: id, created ms, then field/value pairs.
# Returns the names of its files whose deletion is still in progress (wait for them).
_CREATE = """
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', 'eh:media:pending', ARGV[2], ARGV[1])
local busy = {}
for _, field in ipairs({'large', 'small'}) do
  local name = redis.call('HGET', KEYS[1], field)
  redis.call('SADD', 'eh:file:' .. name, ARGV[1])
  if redis.call('EXISTS', 'eh:filedel:' .. name) == 1 then table.insert(busy, name) end
end
return busy
"""

# Forget media ids (KEYS: their hashes) and return the files no media uses any more,
# each marked as being deleted. ARGV[1]: the owner they must have ('' for any),
# ARGV[2]: 'unattached' to refuse any that is attached or an avatar.
# Returns {status, files...}: status 'ok', 'not_found' or 'attached'.
_FORGET = """
for i = 1, #KEYS do
  local owner, post, avatar = unpack(redis.call('HMGET', KEYS[i], 'owner', 'post', 'avatar'))
  if not owner then return {'not_found'} end
  if ARGV[1] ~= '' and owner ~= ARGV[1] then return {'not_found'} end
  if ARGV[2] == 'unattached' and ((post and post ~= '') or avatar == '1') then
    return {'attached'}
  end
end
local gone = {'ok'}
for i = 1, #KEYS do
  local id = string.sub(KEYS[i], 10)
  local files = redis.call('HMGET', KEYS[i], 'large', 'small', 'avatar_file')
  redis.call('DEL', KEYS[i])
  redis.call('ZREM', 'eh:media:pending', id)
  redis.call('ZREM', 'eh:media:dropped', id)
  for j = 1, 3 do
    local name = files[j]
    if name and name ~= '' then
      redis.call('SREM', 'eh:file:' .. name, id)
      if redis.call('SCARD', 'eh:file:' .. name) == 0
          and redis.call('EXISTS', 'eh:filedel:' .. name) == 0 then
        redis.call('SET', 'eh:filedel:' .. name, '1', 'EX', 600)
        table.insert(gone, name)
      end
    end
  end
end
return gone
"""

# Attach media (KEYS: their hashes) to post ARGV[2], all or none: each must exist,
# belong to ARGV[1], be unattached and not an avatar; up to four images or one video.
# Returns {'ok', record...} (each record flattened) or {error code, index}.
_CLAIM = """
local videos = 0
for i = 1, #KEYS do
  local owner, post, avatar, kind = unpack(redis.call('HMGET', KEYS[i], 'owner', 'post',
                                                      'avatar', 'type'))
  if not owner or owner ~= ARGV[1] then return {'media_not_found', tostring(i)} end
  if (post and post ~= '') or avatar == '1' then return {'media_attached', tostring(i)} end
  if kind == 'video' then videos = videos + 1 end
end
if videos > 0 and #KEYS > 1 then return {'too_many_media', '1'} end
local out = {'ok'}
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 'post', ARGV[2])
  redis.call('ZREM', 'eh:media:pending', string.sub(KEYS[i], 10))
  table.insert(out, redis.call('HGETALL', KEYS[i]))
end
return out
"""

# Give media (KEYS) claimed by post ARGV[1] back (the post was not published).
_RELEASE = """
for i = 1, #KEYS do
  if redis.call('HGET', KEYS[i], 'post') == ARGV[1] then
    redis.call('HSET', KEYS[i], 'post', '')
    redis.call('ZADD', 'eh:media:pending', ARGV[2], string.sub(KEYS[i], 10))
  end
end
return 1
"""

# Make media KEYS[1] the avatar of user ARGV[1] (KEYS[2] their hash), with its square
# rendition ARGV[2]; the previous avatar is dropped. Returns {status, dropped id}.
_AVATAR = """
local owner, post, avatar, kind = unpack(redis.call('HMGET', KEYS[1], 'owner', 'post',
                                                    'avatar', 'type'))
if not owner or owner ~= ARGV[1] then return {'media_not_found', ''} end
if (post and post ~= '') or avatar == '1' then return {'media_attached', ''} end
if kind ~= 'image' then return {'not_an_image', ''} end
local id = string.sub(KEYS[1], 10)
local previous = redis.call('HGET', KEYS[2], 'avatar_media') or ''
redis.call('HSET', KEYS[1], 'avatar', '1', 'avatar_file', ARGV[2])
redis.call('SADD', 'eh:file:' .. ARGV[2], id)
redis.call('ZREM', 'eh:media:pending', id)
redis.call('HSET', KEYS[2], 'avatar_media', id)
if previous ~= '' and previous ~= id then
  redis.call('ZADD', 'eh:media:dropped', ARGV[3], previous)
end
return {'ok', previous}
"""


# The member (KEYS[1]) has no avatar any more; the last one is dropped at ARGV[1].
_DROP_AVATAR = """
local previous = redis.call('HGET', KEYS[1], 'avatar_media')
if previous and previous ~= '' then
  redis.call('HDEL', KEYS[1], 'avatar_media')
  redis.call('ZADD', 'eh:media:dropped', ARGV[1], previous)
end
return 1
"""


def _record(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


class MediaStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._create = client.register_script(_CREATE)
        self._forget = client.register_script(_FORGET)
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._avatar = client.register_script(_AVATAR)
        self._drop_avatar = client.register_script(_DROP_AVATAR)

    async def secret(self) -> bytes:
        """The key of the hash that names files, made once for every process."""
        await self.r.set(KEY, secrets.token_hex(32), nx=True)
        value = await self.r.get(KEY)
        return bytes.fromhex(str(value))

    async def create(self, rec: dict[str, str]) -> list[str]:
        """Store a new media record (unattached); the names of its files that are still
        being deleted from an earlier upload of the same bytes (wait, then write)."""
        args = [rec["id"], rec["created_ms"], *[p for item in rec.items() for p in item]]
        busy = await self._create(keys=[media_key(rec["id"])], args=args)
        return [str(name) for name in busy]

    async def deleting(self, names: list[str]) -> bool:
        """Whether any of these files is still being deleted."""
        return bool(await self.r.exists(*[f"eh:filedel:{n}" for n in names]))

    async def file_deleted(self, names: list[str]) -> None:
        if names:
            await self.r.delete(*[f"eh:filedel:{n}" for n in names])

    async def get(self, media_id: str) -> dict[str, str] | None:
        return hash_or_none(await self.r.hgetall(media_key(media_id)))

    async def set_alt(self, media_id: str, alt: str) -> None:
        await self.r.hset(media_key(media_id), "alt", alt)

    async def forget(self, media_ids: list[str], *, owner: str = "",
                     unattached: bool = False) -> tuple[str, list[str]]:  # fmt: skip
        """Delete media records: (status, the files now unused and marked as being
        deleted). Status `not_found` or `attached` changes nothing."""
        reply = await self._forget(keys=[media_key(m) for m in media_ids],
                                   args=[owner, "unattached" if unattached else ""])  # fmt: skip
        return str(reply[0]), [str(n) for n in reply[1:]]

    async def unlist(self, media_id: str) -> None:
        """Drop a media id that has no record any more from the sweep's lists."""
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.zrem(PENDING, media_id)
            pipe.zrem(DROPPED, media_id)
            await pipe.execute()

    async def claim(
        self, owner: str, post_id: str, media_ids: tuple[str, ...]
    ) -> tuple[str, int, list[dict[str, str]]]:
        """Attach all or none: ('ok', 0, records) or (error code, 1-based index, [])."""
        reply = await self._claim(keys=[media_key(m) for m in media_ids], args=[owner, post_id])
        if reply[0] != "ok":
            return str(reply[0]), int(reply[1]), []
        return "ok", 0, [_record([str(x) for x in flat]) for flat in reply[1:]]

    async def release(self, post_id: str, media_ids: tuple[str, ...], now_ms: int) -> None:
        await self._release(keys=[media_key(m) for m in media_ids], args=[post_id, now_ms])

    async def set_avatar(self, user_id: str, media_id: str, file_name: str,
                         now_ms: int) -> tuple[str, str]:  # fmt: skip
        reply = await self._avatar(keys=[media_key(media_id), f"eh:user:{user_id}"],
                                   args=[user_id, file_name, now_ms])  # fmt: skip
        return str(reply[0]), str(reply[1])

    async def drop_avatar(self, user_id: str, now_ms: int) -> None:
        """The member has no avatar any more: the last one is dropped (swept later)."""
        await self._drop_avatar(keys=[f"eh:user:{user_id}"], args=[now_ms])

    async def avatar_file(self, handle: str) -> str:
        """The file of the current avatar of the member with `handle` ('' for none)."""
        user_id = await self.r.get(f"eh:handle:{handle}")
        if not user_id:
            return ""
        media_id = await self.r.hget(f"eh:user:{user_id!s}", "avatar_media")
        if not media_id:
            return ""
        return str(await self.r.hget(media_key(str(media_id)), "avatar_file") or "")

    async def users_of_file(self, name: str) -> list[dict[str, str]]:
        """The media records whose renditions are the file `name` (who may see it)."""
        ids = await self.r.smembers(f"eh:file:{name}")
        if not ids:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for mid in ids:
                pipe.hmget(media_key(str(mid)), "owner", "post", "avatar")
            rows = await pipe.execute()
        return [{"owner": str(o or ""), "post": str(p or ""), "avatar": str(a or "")}
                for o, p, a in rows if o]  # fmt: skip

    async def due(self, pending_before_ms: int, dropped_before_ms: int,
                  batch: int) -> tuple[list[str], list[str]]:  # fmt: skip
        """Media ids due for sweeping: (unattached since before the first time, dropped
        before the second)."""
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(PENDING, "-inf", pending_before_ms, start=0, num=batch)
            pipe.zrangebyscore(DROPPED, "-inf", dropped_before_ms, start=0, num=batch)
            pending, dropped = await pipe.execute()
        return [str(m) for m in pending], [str(m) for m in dropped]
