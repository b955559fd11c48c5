"""Footprints: the latest visit per visitor, and when each visitor was last announced.

Keys:
  eh:footprints:{owner}  zset  visitor id -> latest visit ms (trimmed to the newest
                               MAX_VISITORS)
  eh:fpnotified:{owner}  zset  visitor id -> ms of the last live notification (entries
                               older than the window are dropped: they no longer
                               hold anything back)
Recording a visit and claiming its notification is one script, so two processes
serving two simultaneous views of the same profile notify the owner once.
"""

from __future__ import annotations

import redis.asyncio as redis

from server.store.replies import scored

# KEYS: footprints, notified. ARGV: visitor, now ms, window ms, max visitors.
# The claim mirrors domain.footprints.should_notify: first time, or once the window has
# passed since the last one; a clock that went backwards (now < last) does not repeat.
_VISIT = """
local visitor, now, window, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4])
-- GT keeps the latest visit if clocks disagree; it still adds a new visitor.
redis.call('ZADD', KEYS[1], 'GT', now, visitor)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(keep + 1))
local last = redis.call('ZSCORE', KEYS[2], visitor)
if last and now - tonumber(last) < window then
  return 0
end
redis.call('ZADD', KEYS[2], now, visitor)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - window))
return 1
"""


class FootprintStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._visit = client.register_script(_VISIT)

    async def record_visit(
        self, owner: str, visitor: str, now_ms: int, window_ms: int, keep: int
    ) -> bool:
        """Record the visit; True when this visit is the one to notify the owner about."""
        keys = [f"eh:footprints:{owner}", f"eh:fpnotified:{owner}"]
        return bool(await self._visit(keys=keys, args=[visitor, now_ms, window_ms, keep]))

    async def visitors(self, owner: str, count: int) -> list[tuple[str, float]]:
        """(visitor id, latest visit ms), newest first."""
        return scored(await self.r.zrevrange(f"eh:footprints:{owner}", 0, count - 1,
                                             withscores=True))  # fmt: skip
