"""Events, their RSVPs, and the schedule of `event.starting` notifications.

Keys:
  eh:event:{id}           hash  id host host_handle host_name title description
                                starts_ms ends_ms place community capacity cancelled
                                created_at   (empty string = none; capacity "" = no limit)
  eh:going:{id}           zset  member id -> RSVP ms   (the seats: capacity counts these)
  eh:interested:{id}      zset  member id -> RSVP ms
  eh:events:pending       zset  event id -> start ms, until one process claims the start
  eh:events:firing        zset  event id -> ms its claim lapses: claimed, not yet announced
  eh:event:{id}:start     str   the claim's token while firing; "done" once announced,
                                until the claim is cleared (then deleted)
  eh:hevents:{host}       zset  event id -> created ms
  eh:cevents:{community}  zset  event id -> created ms
  eh:myrsvps:{user}       zset  event id -> created ms (events the member answered)
Event ids are time-ordered like post ids. An RSVP is one script that reads the old
answer, checks the seat count against capacity and writes, so capacity holds under
any number of concurrent RSVPs from any number of processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as redis

from server.store.replies import hash_fields, hash_or_none, scored, str_list

# KEYS: event, going, interested, myrsvps. ARGV: user, new status, now ms, event id.
# Refusals mirror domain.events.check_rsvp_allowed and return what it needs to name them.
_RSVP = """
local ev = redis.call('HMGET', KEYS[1], 'cancelled', 'capacity', 'id')
if not ev[3] then return {'missing'} end
local user, new = ARGV[1], ARGV[2]
local old = 'none'
if redis.call('ZSCORE', KEYS[2], user) then old = 'going'
elseif redis.call('ZSCORE', KEYS[3], user) then old = 'interested' end
local going = redis.call('ZCARD', KEYS[2])
if ev[1] == '1' then return {'refused', old, going, ev[2], '1'} end
if new == 'going' and old ~= 'going' and ev[2] ~= '' and going >= tonumber(ev[2]) then
  return {'refused', old, going, ev[2], '0'}
end
if old ~= new then
  if old == 'going' then redis.call('ZREM', KEYS[2], user) end
  if old == 'interested' then redis.call('ZREM', KEYS[3], user) end
  if new == 'going' then redis.call('ZADD', KEYS[2], ARGV[3], user) end
  if new == 'interested' then redis.call('ZADD', KEYS[3], ARGV[3], user) end
  if new == 'none' then redis.call('ZREM', KEYS[4], ARGV[4])
  else redis.call('ZADD', KEYS[4], tonumber(string.sub(ARGV[4], 1, 12), 16), ARGV[4]) end
end
return {'ok', old, redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3])}
"""

# KEYS: event, going, pending, firing, start key. ARGV: new capacity ("" = none), new
# start ms, field pairs. A start still pending moves. A start claimed but not announced
# yet whose time changes goes back to pending at the new time, and the claim is void
# (its token no longer matches, so its publication is refused). One already announced
# stays announced.
_UPDATE = """
local cancelled = redis.call('HGET', KEYS[1], 'cancelled')
if not cancelled then return {'missing'} end
if cancelled == '1' then return {'cancelled'} end
local going = redis.call('ZCARD', KEYS[2])
if ARGV[1] ~= '' and going > tonumber(ARGV[1]) then return {'below', going} end
local old_start = redis.call('HGET', KEYS[1], 'starts_ms')
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
local id = redis.call('HGET', KEYS[1], 'id')
if redis.call('ZSCORE', KEYS[3], id) then
  redis.call('ZADD', KEYS[3], ARGV[2], id)
elseif tonumber(old_start) ~= tonumber(ARGV[2]) and redis.call('ZSCORE', KEYS[4], id)
    and redis.call('GET', KEYS[5]) ~= 'done' then
  redis.call('ZREM', KEYS[4], id)
  redis.call('DEL', KEYS[5])
  redis.call('ZADD', KEYS[3], ARGV[2], id)
end
return {'ok', going}
"""

# KEYS: event, pending, firing, start key. ARGV: event id. A claim in progress is void:
# its publication is refused (the start key is gone).
_CANCEL = """
local cancelled = redis.call('HGET', KEYS[1], 'cancelled')
if not cancelled then return 'missing' end
if cancelled == '1' then return 'cancelled' end
redis.call('HSET', KEYS[1], 'cancelled', '1')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[4])
return 'ok'
"""

PENDING = "eh:events:pending"
FIRING = "eh:events:firing"
START_DONE = "done"

# KEYS: pending, firing, start key. ARGV: event id, token, lapse ms, now ms. Moves an
# event still due (its start may have moved since it was listed) from pending to firing
# under a fresh claim; 1 for exactly one caller.
_CLAIM = """
local start = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not start or tonumber(start) > tonumber(ARGV[4]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('SET', KEYS[3], ARGV[2])
return 1
"""

# KEYS: firing, start key. ARGV: event id, token, lapse ms, now ms. Takes over a claim
# that lapsed (its process died or stalled between claim and announcement); an event
# already announced only leaves the firing set.
_RECLAIM = """
local lapse = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not lapse or tonumber(lapse) > tonumber(ARGV[4]) then return 0 end
if redis.call('GET', KEYS[2]) == 'done' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""


def community_events_key(community: str) -> str:
    return f"eh:cevents:{community}"


def start_key(event_id: str) -> str:
    return f"eh:event:{event_id}:start"


@dataclass(frozen=True, slots=True)
class RsvpResult:
    """What the RSVP script did: `ok` (applied), `refused` or `missing`."""

    outcome: str
    old: str = "none"
    going: int = 0
    interested: int = 0
    capacity: int | None = None
    cancelled: bool = False


def _ms(event_id: str) -> int:
    return int(event_id[:12], 16)


class EventStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._rsvp = client.register_script(_RSVP)
        self._update = client.register_script(_UPDATE)
        self._cancel = client.register_script(_CANCEL)
        self._claim = client.register_script(_CLAIM)
        self._reclaim = client.register_script(_RECLAIM)

    async def create(self, rec: dict[str, str], starts_ms: int) -> None:
        eid, ms = rec["id"], _ms(rec["id"])
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(f"eh:event:{eid}", mapping=hash_fields(rec))
            pipe.zadd(PENDING, {eid: starts_ms})
            pipe.zadd(f"eh:hevents:{rec['host']}", {eid: ms})
            if rec.get("community"):
                pipe.zadd(community_events_key(rec["community"]), {eid: ms})
            await pipe.execute()

    async def get(self, event_id: str) -> dict[str, str] | None:
        return hash_or_none(await self.r.hgetall(f"eh:event:{event_id}"))

    async def counts(self, event_id: str, viewer: str) -> tuple[int, int, str]:
        """(going, interested, the viewer's answer)."""
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.zcard(f"eh:going:{event_id}")
            pipe.zcard(f"eh:interested:{event_id}")
            pipe.zscore(f"eh:going:{event_id}", viewer)
            pipe.zscore(f"eh:interested:{event_id}", viewer)
            going, interested, g, i = await pipe.execute()
        mine = "going" if g is not None else "interested" if i is not None else "none"
        return int(going), int(interested), mine

    async def attendees(self, event_id: str) -> list[str]:
        """Everyone going or interested."""
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.zrange(f"eh:going:{event_id}", 0, -1)
            pipe.zrange(f"eh:interested:{event_id}", 0, -1)
            going, interested = await pipe.execute()
        return [*going, *interested]

    async def rsvp(self, event_id: str, user: str, status: str, now_ms: int) -> RsvpResult:
        keys = [f"eh:event:{event_id}", f"eh:going:{event_id}", f"eh:interested:{event_id}",
                f"eh:myrsvps:{user}"]  # fmt: skip
        res = await self._rsvp(keys=keys, args=[user, status, now_ms, event_id])
        if res[0] == "missing":
            return RsvpResult("missing")
        if res[0] == "refused":
            cap = int(res[3]) if res[3] else None
            return RsvpResult("refused", res[1], int(res[2]), 0, cap, res[4] == "1")
        return RsvpResult("ok", res[1], int(res[2]), int(res[3]))

    async def update(
        self, event_id: str, fields: dict[str, str], capacity: int | None, starts_ms: int
    ) -> tuple[str, int]:
        """(`ok` | `missing` | `cancelled` | `below`, going count)."""
        keys = [f"eh:event:{event_id}", f"eh:going:{event_id}", PENDING, FIRING,
                start_key(event_id)]  # fmt: skip
        flat = [x for kv in fields.items() for x in kv]
        cap = "" if capacity is None else str(capacity)
        res = await self._update(keys=keys, args=[cap, starts_ms, *flat])
        return str(res[0]), int(res[1]) if len(res) > 1 else 0

    async def cancel(self, event_id: str) -> str:
        """`ok`, `missing` or `cancelled` (already)."""
        keys = [f"eh:event:{event_id}", PENDING, FIRING, start_key(event_id)]
        return str(await self._cancel(keys=keys, args=[event_id]))

    async def due(self, now_ms: int, count: int = 100) -> list[str]:
        """Events whose start has come and that no process has claimed yet."""
        return str_list(await self.r.zrangebyscore(PENDING, "-inf", now_ms, start=0, num=count))

    async def next_due_ms(self) -> int | None:
        first = scored(await self.r.zrange(PENDING, 0, 0, withscores=True))
        return int(first[0][1]) if first else None

    async def claim_start(self, event_id: str, token: str, lapse_ms: int, now_ms: int) -> bool:
        """True for exactly one caller, whatever the number of processes asking, if the
        start is still due at `now_ms`: it is then this caller's to announce, under
        `token`, until `lapse_ms`."""
        keys = [PENDING, FIRING, start_key(event_id)]
        return bool(await self._claim(keys=keys, args=[event_id, token, lapse_ms, now_ms]))

    async def lapsed_starts(self, now_ms: int, count: int = 100) -> list[str]:
        """Claimed starts whose claim lapsed before they were announced."""
        return str_list(await self.r.zrangebyscore(FIRING, "-inf", now_ms, start=0, num=count))

    async def reclaim_start(self, event_id: str, token: str, lapse_ms: int, now_ms: int) -> bool:
        """Take over a lapsed claim (True), unless the start was announced after all."""
        keys = [FIRING, start_key(event_id)]
        return bool(await self._reclaim(keys=keys, args=[event_id, token, lapse_ms, now_ms]))

    async def finish_start(self, event_id: str) -> None:
        """The claim is over (announced, or nothing to announce): forget it. A missing
        start key refuses every token, so a stalled claimant still publishes nothing."""
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.zrem(FIRING, event_id)
            pipe.delete(start_key(event_id))
            await pipe.execute()

    async def upcoming_ids(self, now_ms: int, offset: int, count: int) -> list[str]:
        """Events not started yet (nor cancelled), soonest first."""
        ids = await self.r.zrangebyscore(PENDING, now_ms, "+inf", start=offset, num=count)
        return str_list(ids)

    async def page_ids(self, key: str, before: str | None, limit: int) -> list[str]:
        """Newest first from a zset of time-ordered ids, strictly older than `before`."""
        top = _ms(before) if before else "+inf"
        ids = str_list(await self.r.zrevrangebyscore(key, top, "-inf", start=0, num=limit * 2 + 10))
        return sorted((i for i in ids if before is None or i < before), reverse=True)[: limit + 1]

    async def get_many(self, ids: list[str]) -> list[dict[str, str]]:
        if not ids:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for eid in ids:
                pipe.hgetall(f"eh:event:{eid}")
            return [e for e in await pipe.execute() if e]
