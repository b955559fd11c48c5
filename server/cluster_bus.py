"""The bus on a Valkey/Redis Cluster: per-channel history, sharded pub/sub, one order.

Contract (the single-engine bus's, restated for shards; see docs/cluster.md):
- `publish(channel, body)` runs ONE script in the channel's slot: it stamps the event
  with the id `<µs>-<n>` (the shard's clock, never below the channel's last id),
  appends it to the channel's history stream (trimmed by XDEL so that
  `max-deleted-entry-id` tells a resume whether history still reaches back), and
  SPUBLISHes it with the shard's clock, so a message crosses only its own shard.
  `along` writes (same slot) run in the same transaction, before it; with `replicas`
  the answer waits until that many replicas hold it (WAIT behind EXEC).
- `subscribe(channels)` returns once every channel is live. Events reach the sink in
  ONE order across every channel and shard (the watermark merge): per channel in
  publish order, and never an event stamped before one already delivered. Idle shards
  are ticked so that their silence does not hold the others back for long.
- After a shard reset (a failover, a slot moved) the channels taken away are caught up
  from their history after the last id delivered on each, so subscribers see no gap;
  where the history no longer reaches back, the loss is recorded in the stream
  (`XSETID … MAXDELETEDID`) so that a resume from inside it answers `recovered:false`.
- `history(channel, after)` returns the events after a stamp and whether the history
  still reached back to it.

Not yet behind the app's bus interface: the services still publish with keys that span
slots (issue 18, docs/cluster.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from redis.crc import key_slot
from redis.exceptions import ConnectionError as EngineConnectionError
from redis.exceptions import ResponseError

from server.cluster_pubsub import ShardedSubscriber
from server.store.cluster_resp import ClusterEngineClient
from server.store.resp import Arg
from server.watermark import Stamp, WatermarkMerge

log = logging.getLogger(__name__)


def stream_key(channel: str) -> str:
    """A channel's history, in the channel's own slot (the channel name is the tag)."""
    return f"eh:{{{channel}}}:hist"


def pubsub_channel(channel: str) -> str:
    return f"eh:{{{channel}}}"


def channel_of(pubsub: bytes) -> str:
    return pubsub.decode()[4:-1]


_PUBLISH = """
if ARGV[2] ~= '' and (redis.call('GET', KEYS[2]) or '0') ~= ARGV[2] then
  return false
end
local t = redis.call('TIME')
local clock = tonumber(t[1]) * 1000000 + tonumber(t[2])
local micros = clock
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if newest then
  local last = tonumber(string.match(newest[1], '^(%d+)'))
  if last > micros then micros = last end
end
local id = redis.call('XADD', KEYS[1], string.format('%d', micros) .. '-*', 'e', ARGV[5])
if redis.call('XLEN', KEYS[1]) > tonumber(ARGV[1]) then
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  redis.call('XDEL', KEYS[1], oldest[1][1])
end
redis.call('SPUBLISH', ARGV[4], id .. ' ' .. string.format('%d', clock) .. ' ' .. ARGV[5])
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3]) end
return id
"""

# A shard's clock, heard by every process subscribed to that shard's tick channel.
_TICK = """
local t = redis.call('TIME')
local clock = string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2]))
redis.call('SPUBLISH', KEYS[1], '0-0 ' .. clock)
return 1
"""

# After a failover lost the newest entries: make the stream remember what it lost, so a
# resume from inside the loss answers recovered:false, and new ids come after it.
_RECORD_LOSS = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[1], 'loss', '$', 'MKSTREAM')
  redis.call('XGROUP', 'DESTROY', KEYS[1], 'loss')
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then
    local last = tonumber(string.match(info[i + 1], '^(%d+)'))
    if last >= tonumber(string.match(ARGV[1], '^(%d+)')) then return 0 end
  end
end
redis.call('XSETID', KEYS[1], ARGV[1], 'MAXDELETEDID', ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class BusEvent:
    """One event of one channel, as delivered: its stamp and its body (bytes)."""

    channel: str
    stamp: Stamp
    body: bytes


def tick_channel_for(slot_first: int) -> str:
    """A tick channel that hashes into the slot range starting at `slot_first`."""
    for n in range(100_000):
        name = f"tick:{n}"
        if key_slot(pubsub_channel(name).encode()) == slot_first:
            return name
    raise RuntimeError(f"no tick channel name found for slot {slot_first}")


class ClusterBus:
    """Publish and subscribe on a cluster with the single engine's guarantees."""

    def __init__(
        self,
        engine: ClusterEngineClient,
        sink: Callable[[BusEvent], None],
        *,
        history_size: int = 1000,
        tick_interval: float = 0.01,
    ) -> None:
        self.engine = engine
        self.sink = sink
        self.history_size = history_size
        self.tick_interval = tick_interval
        self._script = engine.script(_PUBLISH)
        self._tick = engine.script(_TICK)
        self._record_loss = engine.script(_RECORD_LOSS)
        self.losses = 0
        self._merge: WatermarkMerge[BusEvent] = WatermarkMerge()
        self._last: dict[str, Stamp] = {}
        self._channels: set[str] = set()
        self._heard: dict[str, float] = {}
        self._ticks: dict[str, str] = {}
        self._sub = ShardedSubscriber(engine, self._on_message, on_batch_end=self._release,
                                      on_reset=self._on_reset)  # fmt: skip
        self._ticker: asyncio.Task[None] | None = None
        self._catching_up: set[asyncio.Task[None]] = set()

    # --- publishing ------------------------------------------------------------------

    async def publish(
        self, channel: str, body: bytes, *, guard: tuple[str, str] | None = None,
        along: Sequence[Sequence[Arg]] = (), settle: str = "", replicas: int = 0,
    ) -> Stamp | None:  # fmt: skip
        """Publish `body` on `channel`; its stamp, or None when `guard` moved."""
        guard_key, guard_value = guard if guard is not None else (stream_key(channel), "")
        keys = [stream_key(channel), guard_key]
        args: list[Arg] = [self.history_size, guard_value, settle, pubsub_channel(channel), body]
        command = self._script.command(keys, args)
        replies = await self.engine.transaction([*along, command], raise_on_error=False,
                                                replicas=replicas)  # fmt: skip
        for reply in replies[:-1]:
            if isinstance(reply, Exception):
                raise reply
        result = replies[-1]
        if self._script.is_unknown(result):
            result = await self._script(keys, args)  # `along` was applied already
        elif isinstance(result, Exception):
            raise result
        return None if result is None else Stamp.parse(channel, str(result))

    # --- subscribing -----------------------------------------------------------------

    async def subscribe(self, channels: Iterable[str]) -> None:
        new = [c for c in channels if c not in self._channels]
        if not new:
            return
        await self.engine.refresh()
        shards = {self._shard_of(c) for c in new}
        for shard in shards:
            if shard not in self._ticks:
                self._merge.add_shard(shard)
                first = next(s for s, o in enumerate(self.engine._owner) if o == shard)
                self._ticks[shard] = tick_channel_for(first)
        ticks = [pubsub_channel(self._ticks[s]) for s in shards]
        await self._sub.subscribe([*ticks, *(pubsub_channel(c) for c in new)])
        self._channels.update(new)
        # Hear every shard now, so the first events are not held for a tick interval.
        await asyncio.gather(*(self._tick_shard(s) for s in shards))
        if self._ticker is None:
            self._ticker = asyncio.ensure_future(self._tick_idle())

    def unsubscribe(self, channels: Iterable[str]) -> None:
        gone = [c for c in channels if c in self._channels]
        self._channels.difference_update(gone)
        self._sub.unsubscribe(pubsub_channel(c) for c in gone)

    async def aclose(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for task in list(self._catching_up):
            task.cancel()
        await self._sub.aclose()

    def _shard_of(self, channel: str) -> str:
        owner = self.engine._owner[key_slot(pubsub_channel(channel).encode())]
        if owner is None:
            raise EngineConnectionError(f"no primary serves channel {channel!r}")
        return owner

    # --- the merged order ------------------------------------------------------------

    def _on_message(self, pubsub: bytes, payload: bytes) -> None:
        channel = channel_of(pubsub)
        entry_id, _, rest = payload.partition(b" ")
        clock_raw, _, body = rest.partition(b" ")
        try:
            clock = int(clock_raw)
            shard = self._shard_of(channel)
        except (ValueError, EngineConnectionError):
            log.warning("cluster bus: undecodable message on %r", channel)
            return
        self._heard[shard] = time.monotonic()
        if entry_id == b"0-0":  # a tick: the shard's clock and nothing else
            self._merge.tick(shard, clock)
            return
        if channel not in self._channels:
            return
        stamp = Stamp.parse(channel, entry_id.decode())
        self._merge.offer(shard, clock, stamp, BusEvent(channel, stamp, body))

    def _release(self) -> None:
        for event in self._merge.release():
            last = self._last.get(event.channel)
            if last is not None and event.stamp <= last:
                continue  # already delivered by a catch-up
            self._last[event.channel] = event.stamp
            self.sink(event)

    async def _tick_shard(self, shard: str) -> None:
        channel = self._ticks.get(shard)
        if channel is None:
            return
        with contextlib.suppress(EngineConnectionError, ResponseError, OSError):
            await self._tick(keys=[pubsub_channel(channel)])

    async def _tick_idle(self) -> None:
        """Tick every shard this process has not heard from for a tick interval."""
        while True:
            await asyncio.sleep(self.tick_interval)
            now = time.monotonic()
            quiet = [s for s in self._ticks
                     if now - self._heard.get(s, 0.0) >= self.tick_interval]  # fmt: skip
            if quiet:
                await asyncio.gather(*(self._tick_shard(s) for s in quiet))

    # --- resets and history ----------------------------------------------------------

    def _on_reset(self, pubsubs: list[bytes]) -> None:
        channels = [channel_of(p) for p in pubsubs if channel_of(p) in self._channels]
        task = asyncio.ensure_future(self._catch_up(channels))
        self._catching_up.add(task)
        task.add_done_callback(self._catching_up.discard)

    async def _catch_up(self, channels: list[str]) -> None:
        """Deliver, in the merged order, what each channel published while away.

        While a shard is away its watermark stands still, so the merge holds every later
        event of the other shards: nothing overtakes what is being caught up. The
        channels' history goes into the merge first; only then does the merge stop
        waiting on shards that own nothing any more, and release."""
        owners = set(self.engine._owner)
        for channel in channels:
            shard = self._shard_of(channel)
            if shard not in self._ticks:
                first = next(s for s, o in enumerate(self.engine._owner) if o == shard)
                self._ticks[shard] = tick_channel_for(first)
                self._merge.add_shard(shard)
                await self._sub.subscribe([pubsub_channel(self._ticks[shard])])
        for channel in channels:
            last = self._last.get(channel)
            if last is not None:
                # What this process delivered and the new primary no longer has is lost:
                # recorded in the stream, so resumes say recovered:false, never a gap.
                lost = await self._record_loss(
                    keys=[stream_key(channel)], args=[f"{last.micros}-{last.index}"]
                )
                if lost:
                    self.losses += 1
                    log.warning("cluster bus: %s lost its history up to %s", channel, last)
            events, _ = await self.history(channel, last)
            shard = self._shard_of(channel)
            for event in events:
                self._merge.offer(shard, -1, event.stamp, event)  # no watermark claimed
        for old in [s for s in self._merge.shards if s not in owners]:
            self._merge.remove_shard(old)
            self._ticks.pop(old, None)
        await asyncio.gather(*(self._tick_shard(s) for s in self._ticks))
        self._release()

    async def history(self, channel: str, after: Stamp | None) -> tuple[list[BusEvent], bool]:
        """Events of `channel` stamped after `after`, and whether history reached back."""
        key = stream_key(channel)
        start = "-" if after is None else f"({after.micros}-{after.index}"
        info, entries = await self.engine.calls(
            [("XINFO", "STREAM", key), ("XRANGE", key, start, "+")], raise_on_error=False
        )
        if isinstance(entries, Exception):
            raise entries
        recovered = True
        if isinstance(info, list) and after is not None:
            fields = dict(zip(info[::2], info[1::2], strict=False))
            deleted = Stamp.parse(channel, str(fields.get("max-deleted-entry-id", "0-0")))
            recovered = deleted <= after
        elif isinstance(info, Exception) and "no such key" not in str(info):
            raise info
        events = [
            BusEvent(channel, Stamp.parse(channel, entry_id), fields[1].encode()
                     if isinstance(fields[1], str) else fields[1])
            for entry_id, fields in entries
        ]  # fmt: skip
        return events, recovered
