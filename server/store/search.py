"""The search indexes: members by name prefix, posts by term.

Keys:
  eh:names          zset  every score 0; members `{key}\\0{user id}` for each key a member
                          is found by (server.domain.search.member_keys), so a prefix
                          lookup is one ZRANGEBYLEX: O(log n + page), never a scan
  eh:term:{term}    zset  every score 0; members post ids, so lexical order is time order
                          (ids start with their creation milliseconds) and a page
                          "older than this id" is one ZREVRANGEBYLEX
  eh:names:built    str   set once every member existing before the index was indexed
A post's terms are also kept in its hash (field `terms`), so deleting it removes them
(server.store.echoes).
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

# Adds post ARGV[1] to the sorted set of each of its terms, ARGV[2] (space-separated,
# the string its hash keeps too): one argument to pack rather than one per term, which
# is what keeps indexing cheap on the posting path. Sent with EVAL (not EVALSHA) inside
# the post's publishing transaction, where a NOSCRIPT after an engine restart could not
# be retried: the engine caches the compiled script by its hash either way.
INDEX_POST = """
local n = 0
for term in string.gmatch(ARGV[2], '[^ ]+') do
  redis.call('ZADD', 'eh:term:' .. term, 0, ARGV[1])
  n = n + 1
end
return n
"""

# Walks the smallest of the terms' sets newest first, from just below ARGV[1] ('' for
# the newest), keeping the ids that every other set holds too (ZSCORE, O(1) each),
# until ARGV[2] are kept or ARGV[3] ids were looked at: the cost of one call is bounded
# whatever the index holds. Returns {kept ids, cursor to go on from or '' when done}.
_FIND_POSTS = """
local smallest, size = 1, nil
for i = 1, #KEYS do
  local n = redis.call('ZCARD', KEYS[i])
  if n == 0 then return {{}, ''} end
  if size == nil or n < size then smallest, size = i, n end
end
local top = '+'
if ARGV[1] ~= '' then top = '(' .. ARGV[1] end
local want, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
local kept, looked, last = {}, 0, ''
while true do
  local chunk = math.min(200, budget - looked)
  local ids = redis.call('ZREVRANGEBYLEX', KEYS[smallest], top, '-', 'LIMIT', 0, chunk)
  for _, id in ipairs(ids) do
    looked = looked + 1
    last = id
    local all = true
    for i = 1, #KEYS do
      if i ~= smallest and not redis.call('ZSCORE', KEYS[i], id) then all = false; break end
    end
    if all then
      kept[#kept + 1] = id
      if #kept >= want then return {kept, last} end
    end
  end
  if #ids < chunk then return {kept, ''} end
  if looked >= budget then return {kept, last} end
  top = '(' .. last
end
"""


def term_key(term: str) -> str:
    return f"eh:term:{term}"


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
        return ("EVAL", INDEX_POST, 0, post_id, terms)

    async def find_posts(
        self, terms: tuple[str, ...], before: str | None, want: int, budget: int
    ) -> tuple[list[str], str | None]:
        """Ids of posts indexed under every term, newest first, older than `before`;
        and where to go on from (None when the index has no more)."""
        reply: Any = await self._find_posts(keys=[term_key(t) for t in terms],
                                            args=[before or "", want, budget])  # fmt: skip
        ids, cursor = reply
        return [str(i) for i in ids], (str(cursor) or None)
