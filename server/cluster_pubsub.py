"""Sharded pub/sub over a cluster: one connection per primary, channels grouped by slot.

Contract (what a cluster bus builds on):
- `subscribe(channels)` returns once the owner of every channel's slot has confirmed
  `SSUBSCRIBE`: from then on every `SPUBLISH` to those channels is delivered. Channels of
  one slot share one `SSUBSCRIBE`; all channels of one primary share its one connection.
- Messages go to `on_message(channel, payload)` in the order their primary sent them
  (so per channel in publish order), and after each socket read `on_batch_end()` runs
  once: the place where the hub's write coalescing starts, as with the single engine.
- A shard reset is reported, never hidden. When the cluster takes channels away from
  a connection (a `sunsubscribe` nobody asked for: the slot moved or a replica was
  promoted) or the connection ends (the primary died), those channels are subscribed
  again at the slot's owner as soon as there is one (the slot map is reloaded, with
  backoff), and only then `on_reset(channels)` runs: whatever was published to them
  while unsubscribed must be read from history by the caller. Until then they receive
  nothing; channels of the other primaries are not disturbed.
- `unsubscribe(channels)` stops delivery; `aclose()` closes every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence

import hiredis
from redis.crc import key_slot
from redis.exceptions import ConnectionError as EngineConnectionError

from server.store.cluster_resp import ClusterEngineClient
from server.store.resp import open_connection

log = logging.getLogger(__name__)

OnMessage = Callable[[bytes, bytes], None]


def _pack(*args: bytes | str) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class _ShardProtocol(asyncio.Protocol):
    """One primary's pub/sub connection: replies parsed by hiredis, handed to the owner."""

    def __init__(self, owner: ShardedSubscriber, address: str) -> None:
        self.owner = owner
        self.address = address
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.channels: set[bytes] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        owner = self.owner
        got = False
        while (reply := self.reader.gets()) is not False:
            got = True
            owner._on_reply(self, reply)
        if got:
            owner.on_batch_end()

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._on_lost(self)

    def send(self, *args: bytes | str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_pack(*args))


class ShardedSubscriber:
    """SSUBSCRIBE over a cluster, resubscribing by itself after slot moves and failovers."""

    def __init__(
        self,
        engine: ClusterEngineClient,
        on_message: OnMessage,
        *,
        on_batch_end: Callable[[], None] = lambda: None,
        on_reset: Callable[[list[bytes]], None] = lambda channels: None,
        confirm_timeout: float = 5.0,
    ) -> None:
        self.engine = engine
        self.on_message = on_message
        self.on_batch_end = on_batch_end
        self.on_reset = on_reset
        self.confirm_timeout = confirm_timeout
        self.resets = 0
        self._wanted: set[bytes] = set()
        self._shards: dict[str, _ShardProtocol] = {}
        self._opening: dict[str, asyncio.Future[_ShardProtocol]] = {}
        self._confirm: dict[bytes, list[asyncio.Future[None]]] = {}
        self._lost: set[bytes] = set()
        self._recovering: asyncio.Task[None] | None = None
        self._closed = False

    # --- the interface ---------------------------------------------------------------

    async def subscribe(self, channels: Iterable[str | bytes]) -> None:
        wanted = [c.encode() if isinstance(c, str) else c for c in channels]
        new = [c for c in dict.fromkeys(wanted) if c not in self._wanted]
        self._wanted.update(new)
        try:
            await asyncio.wait_for(self._subscribe(new), self.confirm_timeout)
        except BaseException:
            self._wanted.difference_update(new)
            raise

    def unsubscribe(self, channels: Iterable[str | bytes]) -> None:
        by_shard: dict[_ShardProtocol, dict[int, list[bytes]]] = {}
        for raw in channels:
            channel = raw.encode() if isinstance(raw, str) else raw
            self._wanted.discard(channel)
            self._lost.discard(channel)
            for shard in self._shards.values():
                if channel in shard.channels:
                    shard.channels.discard(channel)
                    by_shard.setdefault(shard, {}).setdefault(key_slot(channel), []).append(channel)
        for shard, slots in by_shard.items():
            for group in slots.values():
                shard.send("SUNSUBSCRIBE", *group)

    async def aclose(self) -> None:
        self._closed = True
        if self._recovering is not None:
            self._recovering.cancel()
            with contextlib.suppress(BaseException):
                await self._recovering
        for shard in list(self._shards.values()):
            if shard.transport is not None:
                shard.transport.close()
        self._shards.clear()
        for waiters in self._confirm.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(EngineConnectionError("the subscriber is closed"))
                    fut.exception()
        self._confirm.clear()

    @property
    def connections(self) -> int:
        """Open pub/sub connections: one per primary that serves a wanted channel."""
        return len(self._shards)

    # --- subscribing -----------------------------------------------------------------

    async def _subscribe(self, channels: Sequence[bytes]) -> None:
        if not channels:
            return
        if all(o is None for o in self.engine._owner):
            await self.engine.refresh()
        loop = asyncio.get_running_loop()
        groups: dict[str, dict[int, list[bytes]]] = {}
        for channel in channels:
            slot = key_slot(channel)
            owner = self.engine._owner[slot]
            if owner is None:
                raise EngineConnectionError(f"no primary serves hash slot {slot}")
            groups.setdefault(owner, {}).setdefault(slot, []).append(channel)
        waits: list[asyncio.Future[None]] = []
        for address, slots in groups.items():
            shard = await self._shard(address)
            for group in slots.values():
                for channel in group:
                    fut: asyncio.Future[None] = loop.create_future()
                    self._confirm.setdefault(channel, []).append(fut)
                    waits.append(fut)
                    shard.channels.add(channel)
                shard.send("SSUBSCRIBE", *group)
        await asyncio.gather(*waits)

    async def _shard(self, address: str) -> _ShardProtocol:
        shard = self._shards.get(address)
        if shard is not None:
            return shard
        opening = self._opening.get(address)
        if opening is None:
            opening = asyncio.ensure_future(self._open(address))
            self._opening[address] = opening
        try:
            return await asyncio.shield(opening)
        finally:
            if opening.done():
                self._opening.pop(address, None)

    async def _open(self, address: str) -> _ShardProtocol:
        url = f"{self.engine._scheme}://{self.engine._auth}{address}"
        transport, proto, setup = await open_connection(
            url, lambda: _ShardProtocol(self, address), timeout=1.0
        )
        assert isinstance(proto, _ShardProtocol)
        if setup:
            transport.write(b"".join(setup))  # AUTH: its reply is not a pub/sub message
        self._shards[address] = proto
        return proto

    # --- replies ---------------------------------------------------------------------

    def _on_reply(self, shard: _ShardProtocol, reply: object) -> None:
        if not isinstance(reply, list) or len(reply) < 3:
            if isinstance(reply, hiredis.ReplyError):
                # MOVED for an SSUBSCRIBE sent on a stale map: the recovery resends it.
                log.warning("sharded pub/sub on %s: %s", shard.address, reply)
                if str(reply).startswith(("MOVED", "CLUSTERDOWN", "TRYAGAIN")):
                    self._take_away(shard, set(shard.channels - self._confirmed_on(shard)))
            return
        kind, channel = reply[0], reply[1]
        if kind == b"smessage":
            self.on_message(channel, reply[2])
        elif kind == b"ssubscribe":
            for fut in self._confirm.pop(channel, ()):
                if not fut.done():
                    fut.set_result(None)
        elif kind == b"sunsubscribe" and channel in self._wanted and channel in shard.channels:
            # Nobody asked: the cluster moved this channel's slot away from this node.
            self._take_away(shard, {channel})

    def _confirmed_on(self, shard: _ShardProtocol) -> set[bytes]:
        return {c for c in shard.channels if c not in self._confirm}

    def _on_lost(self, shard: _ShardProtocol) -> None:
        if self._shards.get(shard.address) is shard:
            del self._shards[shard.address]
        if not self._closed:
            self._take_away(shard, set(shard.channels))

    def _take_away(self, shard: _ShardProtocol, channels: set[bytes]) -> None:
        shard.channels.difference_update(channels)
        lost = {c for c in channels if c in self._wanted}
        if not lost or self._closed:
            return
        self._lost.update(lost)
        if self._recovering is None or self._recovering.done():
            self._recovering = asyncio.ensure_future(self._recover())

    async def _recover(self) -> None:
        """Subscribe lost channels again wherever their slots live now, then report."""
        delay = 0.05
        while self._lost and not self._closed:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            batch = [c for c in self._lost if c in self._wanted]
            if not batch:
                self._lost.clear()
                return
            try:
                await self.engine.refresh()
                await asyncio.wait_for(self._subscribe(batch), self.confirm_timeout)
            except (EngineConnectionError, OSError, TimeoutError) as exc:
                log.info("sharded pub/sub: resubscribing %d channel(s) failed (%s); retrying",
                         len(batch), exc)  # fmt: skip
                for shard in self._shards.values():
                    shard.channels.difference_update(batch)
                continue
            self._lost.difference_update(batch)
            self.resets += 1
            self.on_reset(batch)
