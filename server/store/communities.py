"""Communities, their members and join requests.

Keys:
  eh:community:{id}       hash  id name description join_policy owner owner_handle
                                owner_name created_at
  eh:community_names      hash  name key (domain.communities.community_name_key) -> id
  eh:communities          zset  community id -> created ms (browsing, newest first)
  eh:cmembers:{id}        zset  member id -> joined ms (the owner is a member)
  eh:crequests:{id}       zset  requester id -> requested ms (approval communities)
  eh:mycommunities:{user} zset  community id -> joined ms
Community ids are time-ordered like post ids (12 hex of ms + 8 random hex).
Every membership change is one script: a member is never also a pending requester,
and the name claim and the record appear together.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as redis

from server.store.replies import hash_or_none, scored, str_list

_CREATE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 5))
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[2])
return 1
"""

# KEYS: community, members, requests, mycommunities. ARGV: user, ms, community id, mode.
# mode 'join' adds a member (open community, or an approval); 'request' files a request.
# Returns 'missing', 'member', 'pending', 'no_request' or the outcome 'joined'/'requested'.
_JOIN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 'member' end
local mode = ARGV[4]
if mode == 'request' then
  if redis.call('ZADD', KEYS[3], 'NX', ARGV[2], ARGV[1]) == 0 then return 'pending' end
  return 'requested'
end
if mode == 'approve' then
  if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then return 'no_request' end
elseif redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  return 'pending'
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[3])
return 'joined'
"""

# KEYS: community, members, requests, mycommunities. ARGV: user, community id.
_LEAVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then return 'owner' end
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('ZREM', KEYS[4], ARGV[2])
  return 'left'
end
if redis.call('ZREM', KEYS[3], ARGV[1]) == 1 then return 'withdrawn' end
return 'none'
"""


@dataclass(frozen=True, slots=True)
class Standing:
    """One member's standing in one community."""

    is_member: bool
    has_pending_request: bool


# Every community by creation (the directory's pages).
ALL_COMMUNITIES_KEY = "eh:communities"


def _keys(community: str, user: str) -> list[str]:
    return [f"eh:community:{community}", f"eh:cmembers:{community}",
            f"eh:crequests:{community}", f"eh:mycommunities:{user}"]  # fmt: skip


class CommunityStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._create = client.register_script(_CREATE)
        self._join = client.register_script(_JOIN)
        self._leave = client.register_script(_LEAVE)

    async def create(self, rec: dict[str, str], name_key: str, ms: int) -> bool:
        """Create the community with its owner as first member; False if the name is taken."""
        cid, owner = rec["id"], rec["owner"]
        keys = ["eh:community_names", f"eh:community:{cid}", "eh:communities",
                f"eh:cmembers:{cid}", f"eh:mycommunities:{owner}"]  # fmt: skip
        flat = [x for kv in rec.items() for x in kv]
        return bool(await self._create(keys=keys, args=[name_key, cid, ms, owner, *flat]))

    async def get(self, community: str) -> dict[str, str] | None:
        return hash_or_none(await self.r.hgetall(f"eh:community:{community}"))

    async def get_many(self, ids: list[str]) -> list[dict[str, str]]:
        if not ids:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for cid in ids:
                pipe.hgetall(f"eh:community:{cid}")
            return [c for c in await pipe.execute() if c]

    async def standing(self, community: str, user: str) -> Standing:
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.zscore(f"eh:cmembers:{community}", user)
            pipe.zscore(f"eh:crequests:{community}", user)
            member, request = await pipe.execute()
        return Standing(member is not None, request is not None)

    async def standings(self, communities: list[str], user: str) -> list[tuple[Standing, int]]:
        """(standing, member count) per community, in one round trip."""
        if not communities:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for cid in communities:
                pipe.zscore(f"eh:cmembers:{cid}", user)
                pipe.zscore(f"eh:crequests:{cid}", user)
                pipe.zcard(f"eh:cmembers:{cid}")
            res = await pipe.execute()
        return [(Standing(res[3 * i] is not None, res[3 * i + 1] is not None), int(res[3 * i + 2]))
                for i in range(len(communities))]  # fmt: skip

    async def members(self, community: str) -> frozenset[str]:
        return frozenset(str_list(await self.r.zrange(f"eh:cmembers:{community}", 0, -1)))

    async def member_page(self, community: str, offset: int, count: int) -> list[tuple[str, float]]:
        return scored(await self.r.zrevrange(f"eh:cmembers:{community}", offset,
                                             offset + count - 1, withscores=True))  # fmt: skip

    async def joined_ids(self, user: str, offset: int, count: int) -> list[str]:
        """The member's communities, most recently joined first."""
        return str_list(await self.r.zrevrange(f"eh:mycommunities:{user}", offset,
                                               offset + count - 1))  # fmt: skip

    async def requests(self, community: str) -> list[tuple[str, float]]:
        """Pending requests, oldest first (the owner answers them in order)."""
        return scored(await self.r.zrange(f"eh:crequests:{community}", 0, -1, withscores=True))

    async def join(self, community: str, user: str, ms: int, mode: str) -> str:
        """mode `join`, `request` or `approve`; see _JOIN for the answers."""
        return str(await self._join(keys=_keys(community, user),
                                    args=[user, ms, community, mode]))  # fmt: skip

    async def reject(self, community: str, user: str) -> bool:
        return bool(await self.r.zrem(f"eh:crequests:{community}", user))

    async def leave(self, community: str, user: str) -> str:
        """`left`, `withdrawn` (a pending request), `none`, `owner` or `missing`."""
        return str(await self._leave(keys=_keys(community, user), args=[user, community]))

    async def page_ids(self, key: str, before: str | None, limit: int) -> list[str]:
        """Newest first from a zset of time-ordered ids, strictly older than `before`."""
        top = int(before[:12], 16) if before else "+inf"
        ids = str_list(await self.r.zrevrangebyscore(key, top, "-inf", start=0, num=limit * 2 + 10))
        return sorted((i for i in ids if before is None or i < before), reverse=True)[: limit + 1]
