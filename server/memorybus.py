"""The bus contract (`server.eventbus`) in one process's memory: no engine.

For the hub's unit tests, which run in milliseconds on it; it passes the same contract
suite as the Redis bus (`tests/integration/test_bus_contract.py`), so what the hub's tests
show holds on the engine too. Deliveries happen on the next loop iteration after a
publish, as the engine's arrive on a later socket read: one dispatch per channel, then
one flush per publish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from server.eventbus import Event, Sink, decode_body


class MemoryBus:
    def __init__(self, *, history_size: int = 1000, first_seq: int = 1_000_000) -> None:
        self.history_size = history_size
        self.sink: Sink | None = None
        self._seq = first_seq
        self._watermark = first_seq
        self._live: set[str] = set()
        self._history: dict[str, list[Event]] = {}
        # Per channel, the highest seq trimmed from its history.
        self._trimmed: dict[str, int] = {}
        self._guards: dict[str, str] = {}

    # --- what tests may do to it --------------------------------------------------------

    def set_guard(self, key: str, value: str) -> None:
        """What a graph change does to an engine key a publish is guarded by."""
        self._guards[key] = value

    # --- the contract ---------------------------------------------------------------------

    async def subscribe(self, channels: Sequence[str]) -> None:
        self._live.update(channels)

    def unsubscribe(self, channels: Sequence[str]) -> None:
        self._live.difference_update(channels)

    @property
    def watermark(self) -> int:
        return self._watermark

    async def head(self) -> int:
        return self._seq

    async def publish(
        self, entries: Sequence[tuple[str, bytes]], *, guard: tuple[str, str] | None = None
    ) -> int | None:
        if guard is not None and self._guards.get(guard[0], "0") != guard[1]:
            return None
        self._seq += 1
        seq = self._seq
        live = []
        for channel, body in entries:
            event = decode_body(seq, body)
            history = self._history.setdefault(channel, [])
            history.append(event)
            if len(history) > self.history_size:
                self._trimmed[channel] = history.pop(0).seq
            if channel in self._live:
                live.append((channel, event))
        asyncio.get_running_loop().call_soon(self._deliver, live)
        return seq

    def _deliver(self, live: list[tuple[str, Event]]) -> None:
        sink = self.sink
        for channel, event in live:
            # Delivered only while still subscribed, as the engine does.
            if channel in self._live:
                self._watermark = max(self._watermark, event.seq)
                if sink is not None:
                    sink.dispatch(channel, event)
        if sink is not None:
            sink.flush()

    async def history(
        self, channels: Sequence[str], after: int, upto: int
    ) -> tuple[list[Event], bool]:
        recovered = True
        events: list[Event] = []
        for channel in channels:
            if self._trimmed.get(channel, 0) > after:
                recovered = False
            events += [e for e in self._history.get(channel, ()) if after < e.seq <= upto]
        events.sort(key=lambda e: e.seq)
        return events, recovered
