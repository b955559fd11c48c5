"""The hub: local connections, their topic subscriptions, encode-once fan-out, one write
path with backpressure. It moves bytes and knows nothing of posts, users or visibility.

A connection is a principal (an opaque id), a codec, a transport and the adapter's peer
(`connection.py`). A subscription is a client-visible topic fed by one or more bus
channels. The parts, each with its contract in its docstring:

    channels.py   the channel table: channel -> subscriptions, ref-counted bus
                  subscriptions, fan-out plans and the epoch that invalidates them
    resume.py     `sub`: ack, replay (with backpressure), buffered live events, live
    fanout.py     a batch of bus events to subscribers, each frame encoded once
    writer.py     the one write path: kernel, transport budget, held, 4008
    heartbeat.py  one sweep for the process: ping the idle, cut the dead
    stats.py      counters and the publish-to-write latency histogram

How an event travels: the bus reads a batch from the engine and calls `dispatch` per
event; the first dispatch schedules a `flush`; the flush runs `before_flush` hooks, fans
the batch out (frames written directly, or queued on connections), writes every queued
connection in one write each, and closes 4008 whoever turned out too slow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from typing import Any

from server.eventbus import Audience as Audience
from server.eventbus import Event as Event
from server.eventbus import EventBus
from server.hub.channels import ChannelTable
from server.hub.connection import GONE as GONE
from server.hub.connection import TRANSPORT_BUDGET as TRANSPORT_BUDGET
from server.hub.connection import Connection as Connection
from server.hub.connection import EventFilter as EventFilter
from server.hub.connection import Peer as Peer
from server.hub.connection import ReplayFilter as ReplayFilter
from server.hub.connection import Subscription as Subscription
from server.hub.connection import Transport as Transport
from server.hub.fanout import FanOut
from server.hub.heartbeat import PING_FRAME, Heartbeat, sweep
from server.hub.resume import subscribe
from server.hub.stats import HubStats as HubStats
from server.hub.writer import Writer
from server.protocol import CloseCode, Codec, close_frame, encode_frame


class Hub:
    def __init__(self, bus: EventBus, *, send_queue_limit: int = 4 * 1024 * 1024) -> None:
        self.bus = bus
        self.stats = HubStats()
        self.table = ChannelTable(bus)
        self.writer = Writer(send_queue_limit)
        self._fanout = FanOut(self.table, self.writer, self.stats)
        self._heartbeat = Heartbeat(self.heartbeat)
        # A principal's one connection, or a set once it has several: most members have
        # one socket, and an empty set alone costs ~200 bytes.
        self._by_principal: dict[str, Connection | set[Connection]] = {}
        self._connections: set[Connection] = set()
        self._flush_scheduled = False
        # Events dispatched since the last flush, in arrival (= seq) order.
        self._batch: list[tuple[str, Event]] = []
        # Run before each flush that writes: a flush to thousands of sockets takes
        # milliseconds, and whatever else waits to be written (requests to the engine)
        # should not wait behind it.
        self.before_flush: list[Callable[[], None]] = []

    # --- connections ---------------------------------------------------------------------

    def connect(self, principal: str, session: str, codec: Codec, transport: Transport,
                peer: Peer, fd: int = -1) -> Connection:  # fmt: skip
        conn = Connection(principal, session, codec, transport, peer, fd)
        self._connections.add(conn)
        peers = self._by_principal.get(principal)
        if peers is None:
            self._by_principal[principal] = conn
        elif isinstance(peers, Connection):
            self._by_principal[principal] = {peers, conn}
        else:
            peers.add(conn)
        self.stats.connections_total += 1
        return conn

    def disconnect(self, conn: Connection) -> None:
        """Forget a connection and all its subscriptions; idempotent."""
        conn.closed = True
        conn.pending.clear()
        for sub in list(conn.subs.values()):
            self.table.remove(sub)
        conn.subs.clear()
        self._connections.discard(conn)
        peers = self._by_principal.get(conn.principal)
        if peers is conn:
            del self._by_principal[conn.principal]
        elif isinstance(peers, set):
            peers.discard(conn)
            if len(peers) == 1:
                self._by_principal[conn.principal] = peers.pop()

    def close(self, conn: Connection, code: int, reason: str = "") -> None:
        """Write the close frame, forget the connection, and let the peer end it.

        What was queued before the close still goes out ahead of the close frame; a
        too-slow reader (4008) forfeits it, and gets the close right after what its
        transport already holds (whole frames, at most about a budget).
        """
        if conn.closed:
            return
        transport = conn.transport
        held, pending = conn.held or [], conn.pending
        if code == CloseCode.TOO_SLOW:
            self.stats.slow_closes += 1
            frames = [close_frame(code, reason)]
        else:
            frames = [*held, *pending, close_frame(code, reason)]
            self.stats.frames_out += len(pending)
        conn.held, conn.held_bytes = None, 0
        if not transport.is_closing():
            # Past the cap on purpose: the close is the last write, and bounded.
            transport.write(b"".join(frames))
            conn.backlog = True
        self.disconnect(conn)
        conn.closer(code, reason)

    def close_principal(self, principal: str, code: int, reason: str = "") -> int:
        conns = list(self._peers(principal))
        for conn in conns:
            self.close(conn, code, reason)
        return len(conns)

    def close_session(self, session: str, code: int, reason: str = "") -> int:
        conns = [c for c in self._connections if c.session == session]
        for conn in conns:
            self.close(conn, code, reason)
        return len(conns)

    def close_all(self, code: int, reason: str = "") -> None:
        for conn in list(self._connections):
            self.close(conn, code, reason)

    def connections_of(self, principal: str) -> frozenset[Connection]:
        return frozenset(self._peers(principal))

    def _peers(self, principal: str) -> Collection[Connection]:
        peers = self._by_principal.get(principal)
        if peers is None:
            return ()
        return (peers,) if isinstance(peers, Connection) else peers

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def subscription_count(self) -> int:
        return sum(len(c.subs) for c in self._connections)

    @property
    def channels(self) -> list[str]:
        return self.table.names()

    # --- heartbeat -----------------------------------------------------------------------

    def start_heartbeat(self, heartbeat: float) -> None:
        """Ping idle sockets and drop dead peers (see heartbeat.py)."""
        if heartbeat and heartbeat > 0:
            self._heartbeat.start(heartbeat / 2)

    def stop_heartbeat(self) -> None:
        self._heartbeat.stop()

    def heartbeat(self) -> None:
        """One sweep; `Connection.idle` is reset to 0 by every frame the peer sends."""
        for conn in sweep(self._connections, self._ping):
            if conn.closed:  # closed too slow by its ping
                continue
            # No close frame: the peer is not reading. What waits in the buffer would
            # never drain, so the transport is aborted rather than closed.
            self.stats.dead_peers += 1
            self.disconnect(conn)
            conn.transport.abort()

    def _ping(self, conn: Connection) -> None:
        self.write_control(conn, PING_FRAME)

    # --- sending -------------------------------------------------------------------------

    def write_control(self, conn: Connection, frame: bytes) -> None:
        """Write a control frame (ping, pong) now, ahead of the frames queued for the
        next flush (a whole frame, so it lands between two messages); it counts against
        the send cap like any frame."""
        if not conn.closed and self.writer.write(conn, frame):
            self.close(conn, CloseCode.TOO_SLOW, "too slow")

    def send(self, conn: Connection, message: dict[str, Any]) -> None:
        """Queue a control message (ack, error, pong) in order with the events."""
        if not conn.closed:
            self.enqueue(conn, encode_frame(conn.codec, message))

    def enqueue(self, conn: Connection, frame: bytes) -> None:
        conn.pending.append(frame)
        if not conn.dirty:
            conn.dirty = True
            self._fanout.dirty.append(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def dispatch(self, channel: str, event: Event) -> None:
        """Take one bus event for the local subscribers of `channel`; the next flush
        fans it out with the rest of its batch."""
        self.stats.events_in += 1
        self.stats.observe_latency(event.seq)
        if channel not in self.table:
            return
        self._batch.append((channel, event))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Fan the batch out, then write everything pending, one write per connection."""
        self._flush_scheduled = False
        fanout = self._fanout
        if not fanout.dirty and not self._batch:
            return
        for hook in self.before_flush:
            hook()
        if self._batch:
            batch, self._batch = self._batch, []
            fanout.fan_out(batch)
            if fanout.too_slow:
                too_slow, fanout.too_slow = fanout.too_slow, []
                for conn in too_slow:
                    self.close(conn, CloseCode.TOO_SLOW, "too slow")
        dirty, fanout.dirty = fanout.dirty, []
        write = self.writer.write
        frames = written = writes = 0
        for conn in dirty:
            conn.dirty = False
            pending = conn.pending
            if conn.closed or not pending:
                pending.clear()
                continue
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            frames += len(pending)
            pending.clear()
            if write(conn, data):
                self.close(conn, CloseCode.TOO_SLOW, "too slow")
                continue
            written += len(data)
            writes += 1
        stats = self.stats
        stats.frames_out += frames
        stats.bytes_out += written
        stats.writes += writes

    # --- subscriptions -------------------------------------------------------------------

    async def subscribe(self, conn: Connection, topic: str, channels: Sequence[str], *,
                        request_id: Any = None, since: int | None = None,
                        flt: EventFilter | None = None,
                        replay_filter: ReplayFilter | None = None) -> None:  # fmt: skip
        """Subscribe `conn` to `topic`, fed by bus `channels` (see resume.py)."""
        await subscribe(self.bus, self.table, self, self.writer, conn, topic, channels,
                        request_id=request_id, since=since, flt=flt,
                        replay_filter=replay_filter)  # fmt: skip

    def unsubscribe(self, conn: Connection, topic: str) -> bool:
        sub = conn.subs.pop(topic, None)
        if sub is None:
            return False
        self.table.remove(sub)
        return True

    async def add_channels(self, conn: Connection, topic: str, channels: Sequence[str]) -> None:
        """Widen a live subscription (e.g. `home` after a follow); no replay for them."""
        sub = conn.subs.get(topic)
        if sub is not None:
            await self.table.widen(sub, channels)

    def remove_channels(self, conn: Connection, topic: str, channels: Sequence[str]) -> None:
        sub = conn.subs.get(topic)
        if sub is not None:
            self.table.narrow(sub, channels)
