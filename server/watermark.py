"""One order for events that arrive from several shards: the watermark merge.

On one engine every event gets its cursor from one counter, so events reach a process
in cursor order. On a cluster each shard stamps its own events (a channel's history id
is `<µs of the shard's clock>-<n>`), and the shards' connections deliver at their own
pace: a `home` made of channels on three shards would see a later event before an
earlier one, and a resume from one cursor could skip the earlier one. This module
restores one order without any I/O (the bus feeds it, the tests feed it by hand):

- Each shard's messages arrive in the order the shard ran them, and each message
  carries the shard's clock when it ran. So once a message stamped `t` arrived from a
  shard, every event of that shard stamped before `t` has arrived: the shard's
  watermark is `t - 1`. Idle shards advance it with ticks (a message carrying only the
  clock).
- An event is released once every shard's watermark has reached its stamp, in
  `(stamp, channel, n)` order. Released events therefore come in one total order
  consistent with every shard's own, and a cursor taken from the last released event
  says exactly what was delivered: nothing at or before it can still arrive.

It assumes a shard's clock does not step backwards (see docs/cluster.md). An event's
stamp may run ahead of its shard's clock (many events in one µs): it then waits until
the clock passes it, which delays it and never reorders it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")


@dataclass(frozen=True, slots=True, order=True)
class Stamp:
    """Where an event stands in the merged order: its µs, its channel, its index."""

    micros: int
    channel: str
    index: int = 0

    @classmethod
    def parse(cls, channel: str, entry_id: str) -> Stamp:
        """From a stream entry id `<µs>-<n>`; ValueError for anything else."""
        micros, _, index = entry_id.partition("-")
        if not micros.isdigit() or not index.isdigit():
            raise ValueError(f"not a stream entry id: {entry_id!r}")
        return cls(int(micros), channel, int(index))


@dataclass(slots=True)
class WatermarkMerge(Generic[Item]):
    """Holds events until every shard has passed them, then releases them in order."""

    _marks: dict[str, int] = field(default_factory=dict)
    _heap: list[tuple[Stamp, int, Item]] = field(default_factory=list)
    _counter: int = 0

    def add_shard(self, shard: str, clock: int = -1) -> None:
        """Start waiting on `shard` (a new shard holds everything until it is heard)."""
        self._marks.setdefault(shard, clock)

    def remove_shard(self, shard: str) -> None:
        """Stop waiting on `shard` (unsubscribed from it, or it is gone for good)."""
        self._marks.pop(shard, None)

    @property
    def shards(self) -> Iterable[str]:
        return self._marks.keys()

    def offer(self, shard: str, clock: int, stamp: Stamp, item: Item) -> None:
        """An event that `shard` ran at `clock` (µs) with `stamp`."""
        self.tick(shard, clock)
        heapq.heappush(self._heap, (stamp, self._counter, item))
        self._counter += 1

    def tick(self, shard: str, clock: int) -> None:
        """`shard` ran something at `clock`: all it ran before has arrived."""
        if clock - 1 > self._marks.get(shard, -1):
            self._marks[shard] = clock - 1

    @property
    def watermark(self) -> int:
        """The µs up to which every shard has delivered everything (-1: none yet)."""
        return min(self._marks.values(), default=-1)

    def release(self) -> list[Item]:
        """Every held event now safe to deliver, in merged order."""
        mark = self.watermark
        heap = self._heap
        out = []
        while heap and heap[0][0].micros <= mark:
            out.append(heapq.heappop(heap)[2])
        return out

    @property
    def held(self) -> int:
        return len(self._heap)
