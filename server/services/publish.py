"""Publishing domain events: one bus call per event, whatever its audience size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.bus import RedisBus, encode_body
from server.hub import Audience
from server.store.resp import Arg

Target = tuple[str, Audience | None]
# A notification that goes out with an event: (member id, type, data) on their `me`.
Note = tuple[str, str, dict[str, Any]]


def _entries(
    type_: str, data: Any, targets: Sequence[Target], notes: Sequence[Note] = ()
) -> list[tuple[str, bytes]]:
    """The bus's (topic, body) per target: each body carries that target's audience."""
    entries = [(topic, encode_body(type_, data, audience)) for topic, audience in targets]
    entries += [(f"me:{uid}", encode_body(kind, body, None)) for uid, kind, body in notes]
    return entries


class Publisher:
    def __init__(self, bus: RedisBus) -> None:
        self.bus = bus

    async def publish(self, type_: str, data: Any, targets: Sequence[Target]) -> int:
        """Publish `data` as `type_` on each (topic, audience) in one engine call."""
        if not targets:
            return 0
        seq = await self.bus.publish(_entries(type_, data, targets))
        assert seq is not None  # no guard
        return seq

    async def publish_guarded(
        self,
        type_: str,
        data: Any,
        targets: Sequence[Target],
        guard: tuple[str, str],
        along: Sequence[Sequence[Arg]] = (),
        settle: str = "",
        notes: Sequence[Note] = (),
    ) -> int | None:
        """Publish unless the engine's `guard` key changed value (then None); `along`
        are writes applied in the same transaction, first, whatever the guard says;
        `settle` is the guard key's value once published; `notes` are notifications
        published with the event (one seq, one engine call)."""
        return await self.bus.publish(_entries(type_, data, targets, notes), guard=guard,
                                      along=along, settle=settle)  # fmt: skip

    async def notify(self, user_id: str, type_: str, data: Any) -> int:
        """A notification on one member's `me` topic."""
        return await self.publish(type_, data, [(f"me:{user_id}", None)])
