"""Fan-out: a batch of bus events to their local subscribers, each frame encoded once.

An event is encoded once per (client topic, codec) and the very same bytes go to every
recipient. A live, unfiltered subscription fed by one channel gets a run of events as ONE
chunk, joined once for all such subscribers, written at once to a connection with this
one subscription and nothing queued (the common case: one pass over the recipients);
everything else is appended to its connection's pending list, which the hub's flush
writes in one write per connection. The per-recipient loops are tight local-variable
loops: no method call per delivery.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from server.eventbus import Event
from server.hub.channels import ChannelTable, Plan
from server.hub.connection import Connection, Subscription
from server.hub.stats import HubStats
from server.hub.writer import Writer
from server.protocol import event_message, ws_frame

_write = os.write
# Live events a replaying subscription may hold back (references, not bytes): a reader
# too slow to take its replay while more arrives is closed 4008 rather than buffered.
LIVE_BUFFER_LIMIT = 10_000


class Frames(dict[str, bytes]):
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


class FanOut:
    """Serves batches; what it queues is in `dirty` (connections with pending frames)
    for the hub's flush, and who turned out too slow in `too_slow`, for the hub to
    close after the batch."""

    def __init__(self, table: ChannelTable, writer: Writer, stats: HubStats) -> None:
        self.table = table
        self.writer = writer
        self.stats = stats
        self.dirty: list[Connection] = []
        self.too_slow: list[Connection] = []

    def fan_out(self, batch: list[tuple[str, Event]]) -> None:
        """Append the batch's frames to their recipients' pending lists.

        A live, unfiltered subscription fed by this one channel gets a run of events
        that restrict nobody as ONE chunk, joined once per (topic, codec) for all such
        subscribers: its topic's order is the channel's order. Every other subscription
        (replaying, filtered, fed by several channels, or an event with an audience) is
        served event by event, in seq order across channels.
        """
        runs: dict[str, list[Event]] = {}
        # Per event: its frames by frame_key. Keyed by the Event object, not its seq: one
        # publication shares its seq across channels, and two channels that reach
        # clients as one topic (the `me:{id}` of two members, both "me") carry
        # different data under the same frame key.
        frames: dict[int, Frames] = {}
        plan_of = self.table.plan
        for channel, event in batch:
            plan = plan_of(channel)
            if plan is None:
                continue
            its_frames = frames.get(id(event))
            if its_frames is None:
                its_frames = frames[id(event)] = Frames(event)
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
            plan = plan_of(channel)
            if plan is not None:
                self._end_run(plan, run, frames)

    def _end_run(self, plan: Plan, run: list[Event] | None, frames: dict[int, Frames]) -> None:
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
        dirty = self.dirty
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
                if taken < size and self.writer.write(conn, chunk[taken:] if taken else chunk):
                    # Closed after the fan-out: closing detaches subscriptions.
                    self.too_slow.append(conn)
                    continue
                sent += 1
                written += size
        stats = self.stats
        # The flush counts each chunk it writes as one frame.
        stats.frames_out += queued * (len(run) - 1) + sent * len(run)
        stats.bytes_out += written
        stats.writes += sent

    def _each(self, subs: Sequence[Subscription], event: Event, frames: Frames) -> None:
        """Serve one event to `subs`, each checked on its own."""
        seq = event.seq
        audience = event.audience
        dirty = self.dirty
        for sub in subs:
            if sub.buffer is not None:
                sub.buffer.append(event)
                if len(sub.buffer) > LIVE_BUFFER_LIMIT:
                    self.too_slow.append(sub.conn)
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
