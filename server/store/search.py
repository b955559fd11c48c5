"""The search indexes: members by name prefix, posts by term.

Keys:
  eh:names          zset  every score 0; members `{key}\\0{user id}` for each key a member
                          is found by (server.domain.search.member_keys), so a prefix
                          lookup is one ZRANGEBYLEX: O(log n + page), never a scan
  eh:tl:{term}      list  the ids of the posts indexed under a term, newest first (ids
                          start with their creation milliseconds): at most the newest
                          TERM_POSTS_KEPT (+1,000 before a trim)
  eh:names:built    str   set once every member existing before the index was indexed
A post's terms are also kept in its hash (field `terms`, space-separated): a search
checks a candidate's other terms there, and a deleted post (no hash) is skipped, so a
deletion leaves the lists alone and its ids age out with the trims.

Why lists and not sorted sets: indexing is one command per term on the posting path,
and LPUSH costs the engine about half what ZADD does (~1.7 against ~3 µs a term here);
a list of ids is also a third of a skiplist's memory. A query walks only the list of
its rarest term and checks the others in each candidate's `terms`, so it needs no
membership test on the other lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis.asyncio as redis

from server.store.replies import str_set
from server.store.resp import Arg, EngineClient

NAMES = "eh:names"
_NAMES_BUILT = "eh:names:built"
# The byte after every UTF-8 byte: `[prefix` .. `[prefix\xff` holds every key starting
# with prefix.
_AFTER_ALL = b"\xff"

# Posts a term's list keeps: a search for only the commonest words reaches this far
# back (a rarer word in the query reaches further); it bounds memory per term.
TERM_POSTS_KEPT = 100_000

# Pushes post ARGV[1] onto the list of each of its terms, ARGV[2] (space-separated, the
# string its hash keeps too): one argument to pack rather than one per term. A list
# more than 1,000 over ARGV[3] is trimmed back (so a trim is rare). Sent with EVAL (not
# EVALSHA) inside the post's publishing transaction, where a NOSCRIPT after an engine
# restart could not be retried: the engine caches the compiled script by its hash.
INDEX_POST = """
local keep = tonumber(ARGV[3])
local n = 0
for term in string.gmatch(ARGV[2], '[^ ]+') do
  local key = 'eh:tl:' .. term
  if redis.call('LPUSH', key, ARGV[1]) > keep + 1000 then redis.call('LTRIM', key, 0, keep - 1) end
  n = n + 1
end
return n
"""

# Walks the list of the rarest term (ARGV[4..]) newest first, from just below post id
# ARGV[1] ('' for the newest; found by binary search, the list being in id order),
# keeping each post whose hash still exists and whose `terms` hold every other term,
# until ARGV[2] are kept or ARGV[3] ids were looked at: the cost of one call is bounded
# whatever the index holds. Returns {kept ids, cursor to go on from or '' when done}.
_FIND_POSTS = """
local best, size = nil, nil
for i = 4, #ARGV do
  local n = redis.call('LLEN', 'eh:tl:' .. ARGV[i])
  if n == 0 then return {{}, ''} end
  if size == nil or n < size then best, size = i, n end
end
local key, before = 'eh:tl:' .. ARGV[best], ARGV[1]
local pos = 0
if before ~= '' then
  local lo, hi = 0, size
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if redis.call('LINDEX', key, mid) >= before then lo = mid + 1 else hi = mid end
  end
  pos = lo
end
local want, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
local kept, looked, last = {}, 0, ''
while looked < budget do
  local chunk = math.min(200, budget - looked)
  local ids = redis.call('LRANGE', key, pos, pos + chunk - 1)
  for _, id in ipairs(ids) do
    looked = looked + 1
    last = id
    local terms = (before == '' or id < before) and redis.call('HGET', 'eh:post:' .. id, 'terms')
    if terms then
      local padded, all = ' ' .. terms .. ' ', true
      for i = 4, #ARGV do
        if i ~= best and not string.find(padded, ' ' .. ARGV[i] .. ' ', 1, true) then
          all = false
          break
        end
      end
      if all then
        kept[#kept + 1] = id
        if #kept >= want then return {kept, last} end
      end
    end
  end
  if #ids < chunk then return {kept, ''} end
  pos = pos + chunk
end
return {kept, last}
"""


def _entry(key: str, user_id: str) -> str:
    return f"{key}\0{user_id}"


class SearchStore:
    def __init__(self, client: redis.Redis, engine: EngineClient) -> None:
        self.r = client
        self.engine = engine
        self._find_posts = engine.script(_FIND_POSTS)

    # --- members -----------------------------------------------------------------------

    @staticmethod
    def member_changes(
        user_id: str, old: Iterable[str], new: Iterable[str]
    ) -> list[tuple[Arg, ...]]:
        """The commands that move a member from the `old` keys to the `new` ones (applied
        with the profile change, in one transaction)."""
        old_set, new_set = set(old), set(new)
        commands: list[tuple[Arg, ...]] = []
        gone = [_entry(k, user_id) for k in sorted(old_set - new_set)]
        added = [x for k in sorted(new_set - old_set) for x in (0, _entry(k, user_id))]
        if gone:
            commands.append(("ZREM", NAMES, *gone))
        if added:
            commands.append(("ZADD", NAMES, *added))
        return commands

    async def apply(self, commands: list[tuple[Arg, ...]]) -> None:
        if commands:
            await self.engine.transaction(commands)

    async def find_members(self, prefix: str, count: int) -> list[tuple[str, str]]:
        """(key, user id) of the first `count` keys starting with `prefix`."""
        low = b"[" + prefix.encode()
        rows = await self.engine.call("ZRANGEBYLEX", NAMES, low, low + _AFTER_ALL,
                                      "LIMIT", 0, count)  # fmt: skip
        found = []
        for row in rows:
            key, _, user_id = str(row).rpartition("\0")
            found.append((key, user_id))
        return found

    async def claim_backfill(self) -> bool:
        """True once, for the process that is to index the members that existed before
        the index did."""
        return bool(await self.r.set(_NAMES_BUILT, "1", nx=True))

    async def all_user_ids(self) -> list[str]:
        return sorted(str_set(await self.r.smembers("eh:users")))

    # --- posts -------------------------------------------------------------------------

    @staticmethod
    def post_indexing(post_id: str, terms: str) -> tuple[Arg, ...] | None:
        """The one command that indexes a new post under `terms` (space-separated), sent
        with its publication."""
        if not terms:
            return None
        return ("EVAL", INDEX_POST, 0, post_id, terms, TERM_POSTS_KEPT)

    async def find_posts(
        self, terms: tuple[str, ...], before: str | None, want: int, budget: int
    ) -> tuple[list[str], str | None]:
        """Ids of posts indexed under every term, newest first, older than `before`;
        and where to go on from (None when the index has no more)."""
        reply: Any = await self._find_posts(args=[before or "", want, budget, *terms])
        ids, cursor = reply
        return [str(i) for i in ids], (str(cursor) or None)
