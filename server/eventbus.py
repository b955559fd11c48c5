"""The bus contract: what the hub (and the publishing services) rely on, whatever engine
carries the events. Implementations: `server.bus.RedisBus` (the engine), and
`server.memorybus.MemoryBus` (one process, for the hub's unit tests). Both pass the one
contract suite, `tests/integration/test_bus_contract.py`.

Names: below the hub, events travel on **channels** (`user:{id}`, `public`, `me:{id}`,
...); a client's topic is fed by one or more channels. How a channel is named inside an
engine is the implementation's business (`RedisBus`: `channel_key` / `channel_of_key`).

The contract:

- **Cursors.** `publish` gives the event one `seq`, an integer cursor that is greater
  than every seq published before it, on every channel (one global order). The same seq
  is the event's cursor on each channel it was published to.
- **Atomic publish.** One `publish` puts the event on every channel in `entries` and in
  each channel's history at once: a reader never sees it on one and not another. With a
  `guard` (key, value), nothing at all is published (None is returned) unless the key
  still holds the value.
- **Live delivery.** `subscribe(channels)` returns once the subscription is live: every
  event published after it returns is delivered to `sink.dispatch(channel, event)`, in
  seq order per channel, each exactly once while subscribed; after each batch of
  deliveries `sink.flush()` runs once (where the hub coalesces its writes). After
  `unsubscribe(channels)` nothing more of them is delivered (the hub counts references
  and unsubscribes a channel after its last local subscriber).
- **Watermark.** `watermark` is the highest seq delivered so far (the head when the bus
  started): every event with a seq up to it, on a channel live at the time, has been
  dispatched. `head()` is the highest seq published by anyone.
- **History.** `history(channels, after, upto)` returns the events of those channels
  with after < seq <= upto, in seq order, each once, and whether the history still
  reached back to `after` (False once events after `after` were trimmed away, or the
  cursor is unknown to the engine). A resume replays `history` and then live events;
  the hub drops anything at or below the last seq it delivered, so overlap is harmless.
- **Reconnection** (engines with a connection): the bus resubscribes by itself and
  delivers from history what was published while it was away, in order, so no
  subscriber sees a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson


@dataclass(frozen=True, slots=True)
class Audience:
    """Who may receive an event: `only` these principals (None: anyone), minus `exclude`."""

    only: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()

    def admits(self, principal: str) -> bool:
        if self.only is not None and principal not in self.only:
            return False
        return principal not in self.exclude


@dataclass(frozen=True, slots=True)
class Event:
    """One published event. `seq` is the bus-assigned cursor, monotonic across channels."""

    seq: int
    type: str
    data: Any
    audience: Audience | None = None


def encode_body(type_: str, data: Any, audience: Audience | None) -> bytes:
    """An event's bytes on the bus (its seq travels beside them)."""
    body: dict[str, Any] = {"t": type_, "d": data}
    if audience is not None:
        body["o"] = sorted(audience.only) if audience.only is not None else None
        body["x"] = sorted(audience.exclude)
    return orjson.dumps(body)


def decode_body(seq: int, body: bytes | str) -> Event:
    obj = orjson.loads(body)
    audience = None
    only, exclude = obj.get("o"), obj.get("x")
    # An audience that restricts nobody is None, so fan-out skips the check entirely.
    if only is not None or exclude:
        audience = Audience(frozenset(only) if only is not None else None, frozenset(exclude or ()))
    return Event(seq, obj["t"], obj["d"], audience)


class Sink(Protocol):
    """Where a bus delivers: the hub."""

    def dispatch(self, channel: str, event: Event) -> None: ...

    def flush(self) -> None: ...


class EventBus(Protocol):
    """The bus as the hub uses it (see the module docstring for the contract)."""

    sink: Sink | None

    async def subscribe(self, channels: Sequence[str]) -> None:
        """Return once every channel is live (raise if the engine is unavailable)."""
        ...

    def unsubscribe(self, channels: Sequence[str]) -> None: ...

    @property
    def watermark(self) -> int:
        """The highest seq delivered so far (or the head when the bus started)."""
        ...

    async def head(self) -> int:
        """The highest seq published so far, by anyone."""
        ...

    async def history(
        self, channels: Sequence[str], after: int, upto: int
    ) -> tuple[list[Event], bool]:
        """Events with after < seq <= upto in seq order, and whether history reached
        back to `after`."""
        ...


class Publishing(Protocol):
    """The bus as the publishing services use it."""

    async def publish(
        self, entries: Sequence[tuple[str, bytes]], *, guard: tuple[str, str] | None = None
    ) -> int | None:
        """Publish one event: `entries` is (channel, encoded body) per channel (see
        `encode_body`). Its seq, or None when `guard` no longer held."""
        ...
