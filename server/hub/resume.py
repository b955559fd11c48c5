"""Subscribing, with resume: the ack, the replay from history, then live events, with
neither gaps nor duplicates.

The subscription is put on its channels in a buffering state and the ack waits until the
bus confirmed every one, so every event published after the ack reaches it. With `since`
the channels' history in (since, head] is replayed (through the service layer's replay
filter: today's rules), a slice at a time once the connection has room (backpressure: a
reader that keeps up resumes over any amount), then the live events buffered meanwhile
with seq > head. Every event's seq is distinct and increasing within a topic, and a
subscription drops anything at or below the last seq it delivered, so replay and buffer
may overlap harmlessly.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Protocol

from server.eventbus import Event, EventBus
from server.hub.channels import ChannelTable
from server.hub.connection import Connection, EventFilter, ReplayFilter, Subscription
from server.hub.writer import Writer
from server.protocol import ack_message, encode_frame, event_message

# A replay is written a slice at a time, each once the connection has room: a reader
# that keeps up gets any amount of history; one that does not is closed 4008 as usual.
REPLAY_SLICE = 64 * 1024


class Outbox(Protocol):
    """The hub's queue of frames for the next flush."""

    def send(self, conn: Connection, message: dict[str, Any]) -> None: ...

    def enqueue(self, conn: Connection, frame: bytes) -> None: ...

    def flush(self) -> None: ...


def admits(sub: Subscription, principal: str, event: Event) -> bool:
    audience = event.audience
    if audience is not None and not audience.admits(principal):
        return False
    return sub.filter is None or sub.filter(event)


async def subscribe(
    bus: EventBus,
    table: ChannelTable,
    outbox: Outbox,
    writer: Writer,
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
        table.remove(conn.subs.pop(topic))
    sub = Subscription(conn, topic, tuple(dict.fromkeys(map(sys.intern, channels))), flt)
    conn.subs[topic] = sub
    try:
        all_live = await table.attach(sub)
        # On channels this process already listens to, every event up to the bus's
        # watermark has arrived (one connection, global seq order) and every later
        # one will: the watermark is an exact start without asking the engine.
        # A newly subscribed channel may have had events we never saw: ask.
        head = bus.watermark if all_live and since is None else await bus.head()
        replay: list[Event] = []
        recovered: bool | None = None
        if since is not None:
            if since > head:
                recovered = False
            else:
                replay, recovered = await bus.history(sub.channels, since, head)
                if replay and recovered and replay_filter is not None:
                    replay = await replay_filter(replay)
    except BaseException:
        if conn.subs.get(topic) is sub:
            del conn.subs[topic]
        table.remove(sub)
        raise
    if conn.closed or conn.subs.get(topic) is not sub:
        table.remove(sub)
        return
    cursor = since if (since is not None and recovered) else head
    if since is None:
        outbox.send(conn, ack_message(request_id, topic=topic, cursor=str(cursor)))
    else:
        outbox.send(conn, ack_message(request_id, topic=topic, cursor=str(cursor),
                                    recovered=recovered))  # fmt: skip
    last = cursor
    principal = conn.principal
    codec = conn.codec
    size = 0
    for event in replay if recovered else ():
        if event.seq > last and admits(sub, principal, event):
            frame = encode_frame(codec, event_message(topic, event.seq, event.type,
                                                      event.data))  # fmt: skip
            outbox.enqueue(conn, frame)
            last = event.seq
            size += len(frame)
            if size >= REPLAY_SLICE:
                # Backpressure: the next slice once this one is on its way.
                size = 0
                outbox.flush()
                await writer.room(conn)
                if conn.closed or conn.subs.get(topic) is not sub:
                    table.remove(sub)
                    return
    buffered = table.went_live(sub)
    last = max(last, head)
    for event in buffered:
        if event.seq > last and admits(sub, principal, event):
            outbox.enqueue(conn, encode_frame(codec, event_message(
                topic, event.seq, event.type, event.data)))  # fmt: skip
            last = event.seq
    sub.last_seq = last
