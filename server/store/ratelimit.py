"""Token buckets kept in the engine, so a limit holds across every server process."""

from __future__ import annotations

from server.settings import RateLimit
from server.store.resp import EngineClient

# Returns 0 when a token was taken, else the seconds until one will be there.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or ARGV[2])
local ts = tonumber(redis.call('HGET', KEYS[1], 'ts') or now)
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""


class RateLimitStore:
    def __init__(self, engine: EngineClient) -> None:
        # Taken on every post and request that is limited: the lean client.
        self._take = engine.script(_TAKE)

    async def take(self, name: str, subject: str, limit: RateLimit) -> float:
        """Take one token; 0.0 if allowed, else seconds to wait."""
        wait = await self._take(
            keys=[f"eh:rl:{name}:{subject}"], args=[repr(limit.per_second), limit.burst]
        )
        return float(wait)
