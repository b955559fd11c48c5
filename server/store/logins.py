"""Sign-in attempt counters, in the engine so that every process counts the same.

One hash per handle (`eh:login:h:{handle}`) and per client address
(`eh:login:a:{address}`): `n` attempts counted, `at` when the last one was.
"""

from __future__ import annotations

from server.store.resp import EngineClient

# KEYS[1] the counter. ARGV: now, free, seconds to keep it, then the waits after
# free, free+1, … counted attempts (the last repeats). Returns "0" and counts the
# attempt, or the seconds left to wait (and counts nothing).
_ATTEMPT = """
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local now = tonumber(ARGV[1])
local free = tonumber(ARGV[2])
if n >= free then
  local i = math.min(4 + n - free, #ARGV)
  local ready = tonumber(redis.call('HGET', KEYS[1], 'at') or '0') + tonumber(ARGV[i])
  if now < ready then
    return tostring(ready - now)
  end
end
redis.call('HSET', KEYS[1], 'n', n + 1, 'at', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return '0'
"""

# Give one counted attempt back (a sign-in that succeeded).
_GIVE_BACK = """
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if n > 1 then
  redis.call('HSET', KEYS[1], 'n', n - 1)
elseif n == 1 then
  redis.call('DEL', KEYS[1])
end
return 0
"""


def handle_key(handle: str) -> str:
    return f"eh:login:h:{handle}"


def address_key(address: str) -> str:
    return f"eh:login:a:{address}"


class LoginStore:
    def __init__(self, engine: EngineClient) -> None:
        self._engine = engine
        self._attempt = engine.script(_ATTEMPT)
        self._give_back = engine.script(_GIVE_BACK)

    async def attempt(self, key: str, now: float, free: int, keep: int,
                      waits: tuple[float, ...]) -> float:  # fmt: skip
        """Count an attempt (0.0), or the seconds to wait before one may be made."""
        args: list[str | int] = [repr(now), free, keep, *(repr(w) for w in waits)]
        return float(await self._attempt(keys=[key], args=args))

    async def give_back(self, key: str) -> None:
        await self._give_back(keys=[key], args=[])

    async def forget(self, key: str) -> None:
        await self._engine.call("DEL", key)
