"""Reports and the moderators' audit log.

Keys:
  eh:report:{id}          hash  json (the report as moderators see it) status open_key
  eh:reported:{reporter}:{about}
                          str   the reporter's open report about a post (`echo:{id}`) or
                                a member (`user:{id}`), while it is open
  eh:reports:{status}     zset  report ids, all scored 0: lexical order is id order, so
                                time order (ids start with their creation ms); status
                                is open, resolved or all
  eh:audit:{id}           str   json (one moderation action)
  eh:audit                zset  action ids, scored 0, like the reports
  eh:user:{id} suspended  set here with the action that suspends or unsuspends
A report keeps a snapshot of what it is about (the post, the member), so that it still
says what was reported after the post is removed.
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as redis

from server.store.replies import str_list

# KEYS: report, reporter's open key, open, all. ARGV: report id, json. The report, unless
# the reporter has one open about the same thing: then that one's id.
_ADD = """
local open = redis.call('GET', KEYS[2])
if open then return open end
redis.call('HSET', KEYS[1], 'json', ARGV[2], 'status', 'open', 'open_key', KEYS[2])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('ZADD', KEYS[4], 0, ARGV[1])
return ARGV[1]
"""

# KEYS: report, audit entry, audit zset. ARGV: report id, resolved report json, entry
# id, entry json. Resolves an open report and logs the action in one step.
_RESOLVE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'open' then return 0 end
local open_key = redis.call('HGET', KEYS[1], 'open_key')
if open_key then redis.call('DEL', open_key) end
redis.call('HSET', KEYS[1], 'json', ARGV[2], 'status', 'resolved')
redis.call('ZREM', 'eh:reports:open', ARGV[1])
redis.call('ZADD', 'eh:reports:resolved', 0, ARGV[1])
redis.call('SET', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], 0, ARGV[3])
return 1
"""


# KEYS: user hash, audit entry, audit zset. ARGV: "1"/"0", entry id, entry json. Sets a
# member's suspended flag and logs the action in one step: 0 if it already had that
# value (nothing logged), -1 if there is no such member.
_SUSPEND = """
local now = redis.call('HGET', KEYS[1], 'suspended')
if not now then return -1 end
if now == ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'suspended', ARGV[1])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[2])
return 1
"""


AUDIT = "eh:audit"


def audit_key(action_id: str) -> str:
    return f"eh:audit:{action_id}"


def _page_range(before: str | None) -> str:
    return f"({before}" if before else "+"


class ModerationStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._add = client.register_script(_ADD)
        self._resolve = client.register_script(_RESOLVE)
        self._suspend = client.register_script(_SUSPEND)

    async def add_report(self, report: dict[str, Any], reporter: str, about: str) -> str:
        """Store `report` (by member `reporter`, about `about`: `echo:{id}` or `user:{id}`)
        and answer its id, unless the reporter has an open report about the same thing:
        then that report's id, and nothing is stored."""
        keys = [f"eh:report:{report['id']}", f"eh:reported:{reporter}:{about}",
                "eh:reports:open", "eh:reports:all"]  # fmt: skip
        return str(await self._add(keys=keys, args=[report["id"], orjson.dumps(report)]))

    async def report(self, report_id: str) -> dict[str, Any] | None:
        raw = await self.r.hget(f"eh:report:{report_id}", "json")
        return orjson.loads(raw) if raw else None

    async def resolve(self, report: dict[str, Any], action: dict[str, Any]) -> bool:
        """Store `report` (now resolved) and log `action`, if it was still open; False
        (nothing written) if it was not."""
        keys = [f"eh:report:{report['id']}", audit_key(action["id"]), AUDIT]
        args = [report["id"], orjson.dumps(report), action["id"], orjson.dumps(action)]
        return bool(await self._resolve(keys=keys, args=args))

    async def reports(self, status: str, before: str | None, limit: int) -> list[dict[str, Any]]:
        """Newest first, strictly older than the `before` id."""
        ids = str_list(await self.r.zrevrangebylex(f"eh:reports:{status}", _page_range(before),
                                                   "-", start=0, num=limit))  # fmt: skip
        if not ids:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for report_id in ids:
                pipe.hget(f"eh:report:{report_id}", "json")
            raws = await pipe.execute()
        return [orjson.loads(raw) for raw in raws if raw]

    async def set_suspended(self, user_id: str, suspended: bool, action: dict[str, Any]) -> bool:
        """Set the member's flag and log `action` with it; False (nothing logged) if the
        flag already had that value."""
        keys = [f"eh:user:{user_id}", audit_key(action["id"]), AUDIT]
        args = ["1" if suspended else "0", action["id"], orjson.dumps(action)]
        return int(await self._suspend(keys=keys, args=args)) == 1

    async def actions(self, before: str | None, limit: int) -> list[dict[str, Any]]:
        """The audit log, newest first, strictly older than the `before` id."""
        ids = str_list(await self.r.zrevrangebylex(AUDIT, _page_range(before), "-",
                                                   start=0, num=limit))  # fmt: skip
        if not ids:
            return []
        raws = await self.r.mget([audit_key(action_id) for action_id in ids])
        return [orjson.loads(raw) for raw in raws if raw]
