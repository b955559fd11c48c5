"""The hub: local connections, topic subscriptions, encode-once fan-out, backpressure.

It moves bytes and knows nothing of posts, users or visibility. A connection is a
principal (an opaque id), a codec and a transport. A subscription is a client-visible
topic name fed by one or more bus channels; the hub subscribes the bus to a channel on
its first local subscriber and unsubscribes after the last.

Fan-out: an event from the bus is encoded once per (client topic, codec) and the same
frame bytes go to every recipient: written at once to a socket with one subscription
and nothing queued, else appended to its pending list. Every connection with pending
frames is flushed in one write per flush (coalescing), and a flush runs once per batch
the bus read, not once per event.

Every byte to a connection (events, acks, errors, pongs, pings, the close frame) goes
through one write path, `Hub.write` (the fan-out's direct write hands it what the
kernel did not take of a chunk): the kernel first, then the transport up to `TRANSPORT_BUDGET`,
then the connection's own `held` list, drained as the transport drains. A connection
whose unsent bytes (transport + held) exceed the cap is closed with 4008 at once: what
is held is dropped, the transport holds whole frames only, so the close frame follows
at most a budget of data. Nobody waits for a slow reader, and one that never reads
(pinging to make us answer) costs at most the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# Re-exported: the hub's callers name events and audiences through it.
from server.eventbus import Audience as Audience
from server.eventbus import Event as Event
from server.eventbus import EventBus
from server.protocol import (
    CloseCode,
    Codec,
    ack_message,
    close_frame,
    encode_frame,
    event_message,
    ws_frame,
)


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...

    def abort(self) -> None: ...


class Peer(Protocol):
    """The socket adapter's side of a connection."""

    def __call__(self, code: int, reason: str) -> None:
        """The close frame (`code`) is written: end the connection (the peer may answer
        first)."""

    async def drained(self) -> None:
        """Return once the transport holds at most `TRANSPORT_BUDGET` bytes again (at
        once if it does now); raise if the connection is lost."""


class _Gone:
    """The peer of a connection the adapter is done with."""

    def __call__(self, code: int, reason: str) -> None:
        pass

    async def drained(self) -> None:
        raise ConnectionResetError("the connection is gone")


GONE: Peer = _Gone()
_write = os.write

EventFilter = Callable[[Event], bool]
# Given the events a `sub` with `since` is about to replay, the ones that may still be
# replayed to its connection today. Supplied by the service layer at `sub` time, called
# once per resume (never per event): the hub knows nothing of what the events mean.
ReplayFilter = Callable[[list[Event]], Awaitable[list[Event]]]
Closer = Peer

# What a connection's transport may hold beyond what the kernel took (the adapter sets
# the transport's high-water mark to it); the rest waits in `Connection.held`, where a
# 4008 can drop it so that the close frame is not stuck behind megabytes.
TRANSPORT_BUDGET = 64 * 1024
# A replay is written a slice at a time, each once the connection has room: a reader
# that keeps up gets any amount of history; one that does not is closed 4008 as usual.
REPLAY_SLICE = 64 * 1024
# Live events a replaying subscription may hold back (references, not bytes): a reader
# too slow to take its replay while more arrives is closed 4008 rather than buffered.
LIVE_BUFFER_LIMIT = 10_000

# A websocket ping with no payload (FIN, opcode 0x9); servers send frames unmasked.
PING_FRAME = b"\x89\x00"
# Heartbeat sweeps run every half heartbeat: a socket silent for `PING_AFTER` sweeps
# (at least one heartbeat) is pinged; one still silent a sweep later is dead.
PING_AFTER = 3
DEAD_AFTER = 4


class Connection:
    __slots__ = ("backlog", "closed", "closer", "codec", "dirty", "fd", "held", "held_bytes",
                 "idle", "pending", "principal", "session", "subs", "transport")  # fmt: skip

    def __init__(
        self,
        principal: str,
        session: str,
        codec: Codec,
        transport: Transport,
        closer: Closer,
        fd: int = -1,
    ) -> None:
        self.principal = principal
        # The plain TCP socket under `transport`, written to directly when the transport
        # has nothing queued (-1: always through the transport, e.g. under TLS). Only
        # while the transport is not closing: its fd may then be closed and reused.
        self.fd = fd
        # The transport may hold bytes the kernel has not taken yet: the fd is written
        # directly only after the transport is found empty. Set by every write through
        # the transport (and at first: the 101 went through it), so that the common
        # case asks the transport nothing.
        self.backlog = True
        self.session = session
        self.codec = codec
        self.transport = transport
        self.closer = closer
        self.pending: list[bytes] = []
        # Frames waiting for the transport to drain below its budget (None: none).
        self.held: list[bytes] | None = None
        self.held_bytes = 0
        self.dirty = False
        self.closed = False
        self.subs: dict[str, Subscription] = {}
        # Heartbeat sweeps since the peer last sent a frame (see Hub.heartbeat).
        self.idle = 0


class Subscription:
    __slots__ = ("buffer", "channels", "conn", "filter", "frame_key", "last_seq", "topic")

    def __init__(
        self, conn: Connection, topic: str, channels: tuple[str, ...], flt: EventFilter | None
    ) -> None:
        self.conn = conn
        self.topic = topic
        # Recipients with equal keys get the very same frame bytes. A str (its hash is
        # cached) rather than a (topic, codec) tuple hashed anew for every recipient;
        # interned, so that the subscribers of a topic share one copy.
        self.frame_key = sys.intern(f"{conn.codec.name}\0{topic}")
        self.channels = channels
        self.filter = flt
        # While the subscription replays history, live events wait here.
        self.buffer: list[Event] | None = []
        self.last_seq = 0


class _Frames(dict[str, bytes]):
    """One event's frames by frame key, each encoded on first need."""

    __slots__ = ("event",)

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event

    def of(self, sub: Subscription) -> bytes:
        frame = self.get(sub.frame_key)
        if frame is None:
            event = self.event
            codec = sub.conn.codec
            frame = self[sub.frame_key] = ws_frame(
                codec.encode(event_message(sub.topic, event.seq, event.type, event.data)),
                codec.binary,
            )
        return frame


class _Plan:
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


@dataclass
class HubStats:
    events_in: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    writes: int = 0
    slow_closes: int = 0
    dead_peers: int = 0
    connections_total: int = 0
    # Publish-to-write latency (engine clock at publish to local clock at dispatch).
    latency_buckets: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5, 1.0, 2.5, 5.0)  # fmt: skip
    latency_counts: list[int] = field(default_factory=lambda: [0] * 13)
    latency_sum: float = 0.0


class Hub:
    def __init__(self, bus: EventBus, *, send_queue_limit: int = 4 * 1024 * 1024) -> None:
        self.bus = bus
        self.send_queue_limit = send_queue_limit
        self.stats = HubStats()
        self._channels: dict[str, dict[Subscription, None]] = {}
        self._channel_ready: dict[str, asyncio.Future[None]] = {}
        # A principal's one connection, or a set once it has several: most members have
        # one socket, and an empty set alone costs ~200 bytes.
        self._by_principal: dict[str, Connection | set[Connection]] = {}
        self._connections: set[Connection] = set()
        self._dirty: list[Connection] = []
        # Connections a fan-out found too slow, closed once it is done.
        self._too_slow: list[Connection] = []
        self._flush_scheduled = False
        # Events dispatched since the last flush, in arrival (= seq) order; fanned out
        # by the flush, all at once.
        self._batch: list[tuple[str, Event]] = []
        # Per channel, its subscribers split into those served a batch whole and the
        # rest (see _plan); rebuilt after any subscription change (`_epoch`).
        self._plans: dict[str, _Plan] = {}
        self._epoch = 0
        self._tasks: set[asyncio.Future[None]] = set()
        self._beat: asyncio.TimerHandle | None = None
        # Run before each flush that writes: a flush to thousands of sockets takes
        # milliseconds, and whatever else waits to be written (requests to the engine)
        # should not wait behind it.
        self.before_flush: list[Callable[[], None]] = []

    # --- connections -------------------------------------------------------------------

    def connect(
        self,
        principal: str,
        session: str,
        codec: Codec,
        transport: Transport,
        closer: Closer,
        fd: int = -1,
    ) -> Connection:
        conn = Connection(principal, session, codec, transport, closer, fd)
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
            self._remove(sub)
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
        return list(self._channels)

    # --- heartbeat ----------------------------------------------------------------------

    def start_heartbeat(self, heartbeat: float) -> None:
        """Ping idle sockets and drop dead peers: one timer for the process, not one each.

        A per-socket heartbeat (aiohttp's) costs a timer per socket, rescheduled on every
        frame received; this sweep walks the connections every `heartbeat / 2` seconds.
        A socket silent for at least `heartbeat` seconds gets a ping; one that sends
        nothing back (a pong or anything else) by the next sweep is cut off.
        """
        if heartbeat and heartbeat > 0:
            self._schedule_beat(heartbeat / 2)

    def stop_heartbeat(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None

    def _schedule_beat(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        self._beat = loop.call_later(interval, self._on_beat, interval)

    def _on_beat(self, interval: float) -> None:
        self._schedule_beat(interval)
        self.heartbeat()

    def heartbeat(self) -> None:
        """One sweep; `Connection.idle` is reset to 0 by every frame the peer sends."""
        dead = []
        for conn in self._connections:
            idle = conn.idle = conn.idle + 1
            if idle < PING_AFTER:
                continue
            if idle >= DEAD_AFTER:
                dead.append(conn)
            else:
                self.write_control(conn, PING_FRAME)
        for conn in dead:
            if conn.closed:  # closed too slow by its ping
                continue
            # No close frame: the peer is not reading. What waits in the buffer would
            # never drain, so the transport is aborted rather than closed.
            self.stats.dead_peers += 1
            self.disconnect(conn)
            conn.transport.abort()

    # --- sending -----------------------------------------------------------------------

    def write_control(self, conn: Connection, frame: bytes) -> None:
        """Write a control frame (ping, pong) now, ahead of the frames queued for the
        next flush (a whole frame, so it lands between two messages); it counts against
        the send cap like any frame."""
        if not conn.closed and self.write(conn, frame):
            self.close(conn, CloseCode.TOO_SLOW, "too slow")

    def write(self, conn: Connection, data: bytes) -> bool:
        """The write path: `data` (whole frames, or the rest of a frame the kernel took
        the start of) to `conn`, after anything it holds.

        Straight to the socket while nothing waits in the transport; what the kernel
        does not take goes to the transport while it holds at most `TRANSPORT_BUDGET`,
        else to `conn.held`. True when `conn` is now too slow (unsent bytes over the
        cap): the caller closes it 4008, at once or after the fan-out it is inside.
        """
        transport = conn.transport
        if transport.is_closing():
            return False
        if conn.held is not None:
            return self._hold(conn, data)
        queued = 0
        if conn.backlog:
            queued = transport.get_write_buffer_size()
            conn.backlog = queued > 0
        taken = 0
        if not queued and conn.fd >= 0:
            # Nothing waits in the transport, so order is kept by writing straight to
            # the socket: ~0.6 µs less per write than the transport's bookkeeping
            # (measured). An error the transport meets again on its own write, and
            # handles.
            try:
                taken = _write(conn.fd, data)
            except OSError:
                pass
            if taken == len(data):
                return False
        elif queued > TRANSPORT_BUDGET:
            return self._hold(conn, data)
        transport.write(data[taken:] if taken else data)
        conn.backlog = True
        return queued + len(data) - taken > self.send_queue_limit

    def _hold(self, conn: Connection, data: bytes) -> bool:
        held = conn.held
        if held is None:
            held = conn.held = []
            task = asyncio.ensure_future(self._drain(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        held.append(data)
        conn.held_bytes += len(data)
        return conn.held_bytes + conn.transport.get_write_buffer_size() > self.send_queue_limit

    async def _drain(self, conn: Connection) -> None:
        """Move what `conn` holds into its transport as the transport drains."""
        transport = conn.transport
        try:
            while conn.held and not conn.closed:
                await conn.closer.drained()
                held = conn.held
                if not held or conn.closed or transport.is_closing():
                    break
                # At least one item each time round, so this ends whatever the
                # transport says; the cap is checked on held + transport, unchanged.
                moved = 0
                while moved < len(held) and (
                    not moved or transport.get_write_buffer_size() <= TRANSPORT_BUDGET
                ):
                    transport.write(held[moved])
                    conn.held_bytes -= len(held[moved])
                    moved += 1
                del held[:moved]
        except Exception:  # the connection was lost: the adapter ends it
            return
        finally:
            if not conn.held:
                conn.held, conn.held_bytes = None, 0
        conn.backlog = True

    async def room(self, conn: Connection) -> None:
        """Return once `conn` holds nothing back and its transport is within budget, or
        it is closed (a replay writes its next slice then)."""
        transport = conn.transport
        while (
            not conn.closed
            and not transport.is_closing()
            and (conn.held or transport.get_write_buffer_size() > TRANSPORT_BUDGET)
        ):
            try:
                await conn.closer.drained()
            except Exception:
                return

    def send(self, conn: Connection, message: dict[str, Any]) -> None:
        """Queue a control message (ack, error, pong) in order with the events."""
        if not conn.closed:
            self._enqueue(conn, encode_frame(conn.codec, message))

    def _enqueue(self, conn: Connection, frame: bytes) -> None:
        conn.pending.append(frame)
        if not conn.dirty:
            conn.dirty = True
            self._dirty.append(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write everything pending, one write per connection."""
        self._flush_scheduled = False
        if not self._dirty and not self._batch:
            return
        for hook in self.before_flush:
            hook()
        if self._batch:
            self._fan_out()
            if self._too_slow:
                too_slow, self._too_slow = self._too_slow, []
                for conn in too_slow:
                    self.close(conn, CloseCode.TOO_SLOW, "too slow")
        dirty, self._dirty = self._dirty, []
        write = self.write
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

    # --- subscriptions -----------------------------------------------------------------

    async def subscribe(
        self,
        conn: Connection,
        topic: str,
        channels: Sequence[str],
        *,
        request_id: Any = None,
        since: int | None = None,
        flt: EventFilter | None = None,
        replay_filter: ReplayFilter | None = None,
    ) -> None:
        """Subscribe `conn` to `topic`, fed by bus `channels`; ack, replay, then go live.

        The ack is queued only once every channel is subscribed on the bus, so every
        event published after it reaches the connection. With `since`, the events of
        the channels strictly after `since` are replayed in order before live ones,
        without duplicates; the ack says `recovered: false` when history no longer
        reaches back (or the cursor is from the future) and then starts at the head.
        `replay_filter` drops replayed events the rules in force now no longer allow
        (an event's audience is the one it had when published).
        """
        # Topic and channel names are interned: the many subscribers of one topic (and
        # the channel table) share one copy of each name instead of one per socket.
        topic = sys.intern(topic)
        if topic in conn.subs:
            self._remove(conn.subs.pop(topic))
        sub = Subscription(conn, topic, tuple(dict.fromkeys(map(sys.intern, channels))), flt)
        conn.subs[topic] = sub
        try:
            all_live = await self._attach(sub)
            # On channels this process already listens to, every event up to the bus's
            # watermark has arrived (one connection, global seq order) and every later
            # one will: the watermark is an exact start without asking the engine.
            # A newly subscribed channel may have had events we never saw: ask.
            head = self.bus.watermark if all_live and since is None else await self.bus.head()
            replay: list[Event] = []
            recovered: bool | None = None
            if since is not None:
                if since > head:
                    recovered = False
                else:
                    replay, recovered = await self.bus.history(sub.channels, since, head)
                    if replay and recovered and replay_filter is not None:
                        replay = await replay_filter(replay)
        except BaseException:
            if conn.subs.get(topic) is sub:
                del conn.subs[topic]
            self._remove(sub)
            raise
        if conn.closed or conn.subs.get(topic) is not sub:
            self._remove(sub)
            return
        cursor = since if (since is not None and recovered) else head
        if since is None:
            self.send(conn, ack_message(request_id, topic=topic, cursor=str(cursor)))
        else:
            self.send(conn, ack_message(request_id, topic=topic, cursor=str(cursor),
                                        recovered=recovered))  # fmt: skip
        last = cursor
        principal = conn.principal
        codec = conn.codec
        size = 0
        for event in replay if recovered else ():
            if event.seq > last and self._admits(sub, principal, event):
                frame = encode_frame(codec, event_message(topic, event.seq, event.type,
                                                          event.data))  # fmt: skip
                self._enqueue(conn, frame)
                last = event.seq
                size += len(frame)
                if size >= REPLAY_SLICE:
                    # Backpressure: the next slice once this one is on its way.
                    size = 0
                    self.flush()
                    await self.room(conn)
                    if conn.closed or conn.subs.get(topic) is not sub:
                        self._remove(sub)
                        return
        buffered, sub.buffer = sub.buffer or [], None
        self._epoch += 1  # the subscription is live: it may take batches whole
        last = max(last, head)
        for event in buffered:
            if event.seq > last and self._admits(sub, principal, event):
                self._enqueue(conn, encode_frame(codec, event_message(
                    topic, event.seq, event.type, event.data)))  # fmt: skip
                last = event.seq
        sub.last_seq = last

    def unsubscribe(self, conn: Connection, topic: str) -> bool:
        sub = conn.subs.pop(topic, None)
        if sub is None:
            return False
        self._remove(sub)
        return True

    async def add_channels(self, conn: Connection, topic: str, channels: Sequence[str]) -> None:
        """Widen a live subscription (e.g. `home` after a follow); no replay for them."""
        sub = conn.subs.get(topic)
        if sub is None:
            return
        new = tuple(sys.intern(c) for c in channels if c not in sub.channels)
        if not new:
            return
        sub.channels = sub.channels + new
        self._epoch += 1
        try:
            await self._attach(sub, new)
        except BaseException:
            self._detach(sub, new)
            sub.channels = tuple(c for c in sub.channels if c not in new)
            raise

    def remove_channels(self, conn: Connection, topic: str, channels: Sequence[str]) -> None:
        sub = conn.subs.get(topic)
        if sub is None:
            return
        gone = tuple(c for c in channels if c in sub.channels)
        sub.channels = tuple(c for c in sub.channels if c not in gone)
        self._epoch += 1
        self._detach(sub, gone)

    async def _attach(self, sub: Subscription, channels: Sequence[str] | None = None) -> bool:
        """Put `sub` on its channels; True if every one was already live on the bus."""
        waits = []
        all_live = True
        for channel in sub.channels if channels is None else channels:
            subs = self._channels.get(channel)
            ready_before = self._channel_ready.get(channel)
            if ready_before is None or not ready_before.done():
                all_live = False
            if subs is None:
                subs = self._channels[channel] = {}
                ready = asyncio.get_running_loop().create_future()
                self._channel_ready[channel] = ready
                task = asyncio.ensure_future(self._subscribe_bus(channel, ready))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            subs[sub] = None
            self._epoch += 1
            waits.append(self._channel_ready[channel])
        for ready in waits:
            await asyncio.shield(ready)
        return all_live

    async def _subscribe_bus(self, channel: str, ready: asyncio.Future[None]) -> None:
        try:
            await self.bus.subscribe([channel])
        except Exception as exc:
            # Nobody may stay on a channel the bus never confirmed.
            if self._channel_ready.get(channel) is ready:
                del self._channel_ready[channel]
                for sub in self._channels.pop(channel, {}):
                    sub.channels = tuple(c for c in sub.channels if c != channel)
                self._epoch += 1
            if not ready.done():
                ready.set_exception(exc)
                ready.exception()  # mark retrieved: waiters re-raise it themselves
        else:
            if not ready.done():
                ready.set_result(None)

    def _remove(self, sub: Subscription) -> None:
        self._detach(sub, sub.channels)

    def _detach(self, sub: Subscription, channels: Sequence[str]) -> None:
        self._epoch += 1
        emptied = []
        for channel in channels:
            subs = self._channels.get(channel)
            if subs is None:
                continue
            subs.pop(sub, None)
            # Not kept until the channel's next event: a plan holds its subscribers.
            self._plans.pop(channel, None)
            if not subs:
                del self._channels[channel]
                ready = self._channel_ready.pop(channel, None)
                if ready is not None and ready.done() and ready.exception() is None:
                    emptied.append(channel)
                elif ready is not None and not ready.done():
                    # Still subscribing: unsubscribe once that completes.
                    ready.add_done_callback(functools.partial(self._unsubscribe_later, channel))
        if emptied:
            with contextlib.suppress(Exception):
                self.bus.unsubscribe(emptied)

    def _unsubscribe_later(self, channel: str, subscribed: asyncio.Future[None]) -> None:
        """The bus confirmed a channel nobody wants any more (unless somebody came back)."""
        if channel in self._channels or subscribed.cancelled() or subscribed.exception():
            return
        self.bus.unsubscribe([channel])

    @staticmethod
    def _admits(sub: Subscription, principal: str, event: Event) -> bool:
        audience = event.audience
        if audience is not None and not audience.admits(principal):
            return False
        return sub.filter is None or sub.filter(event)

    # --- fan-out -----------------------------------------------------------------------

    def dispatch(self, channel: str, event: Event) -> None:
        """Take one bus event for the local subscribers of `channel`; the next flush
        fans it out with the rest of its batch."""
        self.stats.events_in += 1
        self._observe_latency(event.seq)
        if channel not in self._channels:
            return
        self._batch.append((channel, event))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def _plan(self, channel: str) -> _Plan | None:
        plan = self._plans.get(channel)
        if plan is not None and plan.epoch == self._epoch:
            return plan
        subs = self._channels.get(channel)
        if not subs:
            self._plans.pop(channel, None)
            return None
        plan = self._plans[channel] = _Plan(self._epoch, subs)
        return plan

    def _fan_out(self) -> None:
        """Append the batch's frames to their recipients' pending lists.

        A live, unfiltered subscription fed by this one channel gets a run of events
        that restrict nobody as ONE chunk, joined once per (topic, codec) for all such
        subscribers: its topic's order is the channel's order. Every other subscription
        (replaying, filtered, fed by several channels, or an event with an audience) is
        served event by event, in seq order across channels.
        """
        batch, self._batch = self._batch, []
        runs: dict[str, list[Event]] = {}
        # Per event: its frames by frame_key. Keyed by the Event object, not its seq: one
        # publication shares its seq across channels, and two channels that reach
        # clients as one topic (the `me:{id}` of two members, both "me") carry
        # different data under the same frame key.
        frames: dict[int, _Frames] = {}
        for channel, event in batch:
            plan = self._plan(channel)
            if plan is None:
                continue
            its_frames = frames.get(id(event))
            if its_frames is None:
                its_frames = frames[id(event)] = _Frames(event)
            if plan.one_by_one:
                self._each(plan.one_by_one, event, its_frames)
            if plan.whole:
                if event.audience is None:
                    runs.setdefault(channel, []).append(event)
                else:
                    self._end_run(plan, runs.pop(channel, None), frames)
                    for subs in plan.whole.values():
                        self._each(subs, event, its_frames)
        for channel, run in runs.items():
            self._end_run(self._plans[channel], run, frames)

    def _end_run(self, plan: _Plan, run: list[Event] | None, frames: dict[int, _Frames]) -> None:
        """Serve a run of events that restrict nobody to the channel's whole-batch takers.

        A connection with this one subscription and nothing queued, in the flush or in
        its transport, is written to here and now: the common case at moderate rates,
        where a flush carries one event, and one pass over the recipients instead of
        two. The rest queue the chunk behind what they have pending: a connection with
        several subscriptions may get more from this batch, all in the flush's one
        write.
        """
        if not run:
            return
        first, last = run[0].seq, run[-1].seq
        dirty = self._dirty
        queued = sent = written = 0
        for subs in plan.whole.values():
            head = subs[0]
            chunk = b"".join([frames[id(event)].of(head) for event in run])
            size = len(chunk)
            for sub in subs:
                if first <= sub.last_seq:  # rare: its replay reached into this run
                    for event in run:
                        self._each((sub,), event, frames[id(event)])
                    continue
                sub.last_seq = last
                conn = sub.conn
                if conn.dirty or conn.backlog or conn.fd < 0 or len(conn.subs) > 1:
                    conn.pending.append(chunk)
                    queued += 1
                    if not conn.dirty:
                        conn.dirty = True
                        dirty.append(conn)
                    continue
                if conn.transport.is_closing():
                    continue
                try:
                    taken = _write(conn.fd, chunk)
                except OSError:
                    taken = 0
                # The rest, if any, through the write path (the kernel is full: it
                # goes to the transport).
                if taken < size and self.write(conn, chunk[taken:] if taken else chunk):
                    # Closed after the fan-out: closing detaches subscriptions.
                    self._too_slow.append(conn)
                    continue
                sent += 1
                written += size
        stats = self.stats
        # The flush counts each chunk it writes as one frame.
        stats.frames_out += queued * (len(run) - 1) + sent * len(run)
        stats.bytes_out += written
        stats.writes += sent

    def _each(self, subs: Sequence[Subscription], event: Event, frames: _Frames) -> None:
        """Serve one event to `subs`, each checked on its own."""
        seq = event.seq
        audience = event.audience
        dirty = self._dirty
        for sub in subs:
            if sub.buffer is not None:
                sub.buffer.append(event)
                if len(sub.buffer) > LIVE_BUFFER_LIMIT:
                    self._too_slow.append(sub.conn)
                continue
            if seq <= sub.last_seq:
                continue
            conn = sub.conn
            if audience is not None and not audience.admits(conn.principal):
                continue
            if sub.filter is not None and not sub.filter(event):
                continue
            sub.last_seq = seq
            conn.pending.append(frames.of(sub))
            if not conn.dirty:
                conn.dirty = True
                dirty.append(conn)

    def _observe_latency(self, seq: int) -> None:
        # seq is the engine's clock in microseconds at publish time.
        latency = max(0.0, time.time() - seq / 1_000_000)
        stats = self.stats
        stats.latency_sum += latency
        buckets = stats.latency_buckets
        for i, bound in enumerate(buckets):
            if latency <= bound:
                stats.latency_counts[i] += 1
                return
        stats.latency_counts[len(buckets)] += 1
