"""A member's notification history and read marker.

The history is the member's `me:{id}` channel history, which the bus's publish script
already keeps: every notification is stored there in the same engine call that
publishes it, and trimmed there to the bus's history size (1,000 by default, so the
cap is the engine's). Nothing more is written per notification; this module only reads
that stream (its key is the bus's, `server.bus.stream_key`), newest first.

Keys:
  eh:notes_read:{user}   str   the cursor (bus seq) up to which the member has read
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from server.bus import stream_key
from server.store.resp import EngineClient


def notes_channel(user_id: str) -> str:
    """The bus channel of a member's notifications (the `me` topic's history)."""
    return f"me:{user_id}"


def _read_key(user_id: str) -> str:
    return f"eh:notes_read:{user_id}"


# Entries after the read marker. One script: the marker and the count agree.
_UNREAD = """
local marker = redis.call('GET', KEYS[2]) or '0'
return {marker, #redis.call('XRANGE', KEYS[1], '(' .. marker .. '-0', '+')}
"""

# Move the read marker forward to ARGV[1], never past the newest notification and never
# back; answer the marker and what is left unread.
_MARK_READ = """
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local marker = redis.call('GET', KEYS[2]) or '0'
if #newest == 0 then return {marker, 0} end
local top = string.match(newest[1][1], '^(%d+)')
local want = ARGV[1]
if #want > #top or (#want == #top and want > top) then want = top end
if #want > #marker or (#want == #marker and want > marker) then
  marker = want
  redis.call('SET', KEYS[2], marker)
end
return {marker, #redis.call('XRANGE', KEYS[1], '(' .. marker .. '-0', '+')}
"""


@dataclass(frozen=True, slots=True)
class StoredNote:
    """One notification as kept: its cursor (the bus seq), type and data."""

    cursor: int
    type: str
    data: Any


class NotificationStore:
    def __init__(self, engine: EngineClient) -> None:
        self.engine = engine
        self._unread = engine.script(_UNREAD)
        self._mark_read = engine.script(_MARK_READ)

    def _keys(self, user_id: str) -> list[str]:
        return [stream_key(notes_channel(user_id)), _read_key(user_id)]

    async def page(self, user_id: str, before: int | None, count: int) -> list[StoredNote]:
        """Newest first, strictly older than cursor `before`."""
        top = f"({before}-0" if before is not None else "+"
        entries = await self.engine.call(
            "XREVRANGE", stream_key(notes_channel(user_id)), top, "-", "COUNT", count
        )
        notes = []
        for entry_id, fields in entries:
            body = orjson.loads(dict(zip(fields[::2], fields[1::2], strict=True))["e"])
            notes.append(StoredNote(int(entry_id.split("-", 1)[0]), body["t"], body["d"]))
        return notes

    async def unread(self, user_id: str) -> tuple[int, int]:
        """(the read marker, how many notifications are newer)."""
        marker, count = await self._unread(keys=self._keys(user_id))
        return int(marker), int(count)

    async def mark_read(self, user_id: str, until: int) -> tuple[int, int]:
        """Move the marker to `until` (at most the newest, never back): (marker, unread)."""
        marker, count = await self._mark_read(keys=self._keys(user_id), args=[str(until)])
        return int(marker), int(count)

    async def existing_posts(self, post_ids: list[str]) -> set[str]:
        """Which of these posts still exist (a notification about a deleted one loses
        its text)."""
        if not post_ids:
            return set()
        found = await self.engine.calls([("EXISTS", f"eh:post:{pid}") for pid in post_ids])
        return {pid for pid, n in zip(post_ids, found, strict=True) if n}
