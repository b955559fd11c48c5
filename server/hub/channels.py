"""The channel table: which local subscriptions each bus channel feeds, the bus's
subscriptions counted by reference, and the fan-out plans.

Contract:
- A channel is subscribed on the bus on its first local subscription and unsubscribed
  after its last (also when the last one leaves while the bus is still confirming).
  `attach` returns once the bus confirmed every channel, so every event published after
  it reaches the subscription; a channel the bus refused is taken off everyone on it.
- `plan(channel)` is the channel's subscribers as the fan-out serves them, cached. Every
  change that can alter a plan (a subscription joining or leaving a channel, its
  channels changing, it going live after its replay) goes through a method here, and
  each bumps the epoch that invalidates the cached plans: no caller can forget it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import Collection, Sequence

from server.eventbus import Event, EventBus
from server.hub.connection import Subscription


class Plan:
    """A channel's subscribers as fan-out serves them, valid while `epoch` is current.

    `whole`: live, unfiltered subscriptions fed by this channel alone, by frame key:
    a run of events is one shared chunk for each. `one_by_one`: the rest.
    """

    __slots__ = ("epoch", "one_by_one", "whole")

    def __init__(self, epoch: int, subs: Collection[Subscription]) -> None:
        self.epoch = epoch
        self.whole: dict[str, list[Subscription]] = {}
        self.one_by_one: list[Subscription] = []
        for sub in subs:
            if sub.buffer is None and sub.filter is None and len(sub.channels) == 1:
                self.whole.setdefault(sub.frame_key, []).append(sub)
            else:
                self.one_by_one.append(sub)


class ChannelTable:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._subs: dict[str, dict[Subscription, None]] = {}
        self._ready: dict[str, asyncio.Future[None]] = {}
        # Per channel, its subscribers split into those served a batch whole and the
        # rest; rebuilt after any change here (`_epoch`).
        self._plans: dict[str, Plan] = {}
        self._epoch = 0
        self._tasks: set[asyncio.Future[None]] = set()

    def __contains__(self, channel: str) -> bool:
        return channel in self._subs

    def names(self) -> list[str]:
        return list(self._subs)

    def plan(self, channel: str) -> Plan | None:
        plan = self._plans.get(channel)
        if plan is not None and plan.epoch == self._epoch:
            return plan
        subs = self._subs.get(channel)
        if not subs:
            self._plans.pop(channel, None)
            return None
        plan = self._plans[channel] = Plan(self._epoch, subs)
        return plan

    # --- the mutators (each bumps the epoch) ---------------------------------------------

    async def attach(self, sub: Subscription, channels: Sequence[str] | None = None) -> bool:
        """Put `sub` on its channels (or these of them); True if every one was already
        live on the bus. Returns once the bus confirmed them all."""
        waits = []
        all_live = True
        for channel in sub.channels if channels is None else channels:
            subs = self._subs.get(channel)
            ready_before = self._ready.get(channel)
            if ready_before is None or not ready_before.done():
                all_live = False
            if subs is None:
                subs = self._subs[channel] = {}
                ready = asyncio.get_running_loop().create_future()
                self._ready[channel] = ready
                task = asyncio.ensure_future(self._subscribe_bus(channel, ready))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            subs[sub] = None
            self._epoch += 1
            waits.append(self._ready[channel])
        for ready in waits:
            await asyncio.shield(ready)
        return all_live

    def remove(self, sub: Subscription) -> None:
        """Take `sub` off all its channels."""
        self._detach(sub, sub.channels)

    def went_live(self, sub: Subscription) -> list[Event]:
        """`sub` replayed what it had to: from now on the fan-out serves it directly.
        The live events it buffered meanwhile, for the caller to deliver."""
        buffered, sub.buffer = sub.buffer or [], None
        self._epoch += 1  # it may take batches whole now
        return buffered

    async def widen(self, sub: Subscription, channels: Sequence[str]) -> None:
        """Add channels to a live subscription (no replay for them)."""
        new = tuple(sys.intern(c) for c in channels if c not in sub.channels)
        if not new:
            return
        sub.channels = sub.channels + new
        self._epoch += 1
        try:
            await self.attach(sub, new)
        except BaseException:
            self._detach(sub, new)
            sub.channels = tuple(c for c in sub.channels if c not in new)
            raise

    def narrow(self, sub: Subscription, channels: Sequence[str]) -> None:
        gone = tuple(c for c in channels if c in sub.channels)
        sub.channels = tuple(c for c in sub.channels if c not in gone)
        self._detach(sub, gone)

    def _detach(self, sub: Subscription, channels: Sequence[str]) -> None:
        self._epoch += 1
        emptied = []
        for channel in channels:
            subs = self._subs.get(channel)
            if subs is None:
                continue
            subs.pop(sub, None)
            # Not kept until the channel's next event: a plan holds its subscribers.
            self._plans.pop(channel, None)
            if not subs:
                del self._subs[channel]
                ready = self._ready.pop(channel, None)
                if ready is not None and ready.done() and ready.exception() is None:
                    emptied.append(channel)
                elif ready is not None and not ready.done():
                    # Still subscribing: unsubscribe once that completes.
                    ready.add_done_callback(functools.partial(self._unsubscribe_later, channel))
        if emptied:
            with contextlib.suppress(Exception):
                self.bus.unsubscribe(emptied)

    # --- the bus's side ------------------------------------------------------------------

    async def _subscribe_bus(self, channel: str, ready: asyncio.Future[None]) -> None:
        try:
            await self.bus.subscribe([channel])
        except Exception as exc:
            # Nobody may stay on a channel the bus never confirmed.
            if self._ready.get(channel) is ready:
                del self._ready[channel]
                for sub in self._subs.pop(channel, {}):
                    sub.channels = tuple(c for c in sub.channels if c != channel)
                self._epoch += 1
            if not ready.done():
                ready.set_exception(exc)
                ready.exception()  # mark retrieved: waiters re-raise it themselves
        else:
            if not ready.done():
                ready.set_result(None)

    def _unsubscribe_later(self, channel: str, subscribed: asyncio.Future[None]) -> None:
        """The bus confirmed a channel nobody wants any more (unless somebody came back)."""
        if channel in self._subs or subscribed.cancelled() or subscribed.exception():
            return
        self.bus.unsubscribe([channel])
