"""A connection and its subscriptions as the hub keeps them, and what a connection
is made of: a transport (asyncio's, or a simulated one in tests) and the adapter's peer.

Values with slots, no behaviour: the parts of the hub act on them. Idle sockets are the
common case, so every slot here costs 8 bytes on each of them.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Protocol

from server.eventbus import Event
from server.protocol import Codec

EventFilter = Callable[[Event], bool]
# Given the events a `sub` with `since` is about to replay, the ones that may still be
# replayed to its connection today. Supplied by the service layer at `sub` time, called
# once per resume (never per event): the hub knows nothing of what the events mean.
ReplayFilter = Callable[[list[Event]], Awaitable[list[Event]]]

# What a connection's transport may hold beyond what the kernel took (the adapter sets
# the transport's high-water mark to it); the rest waits in `Connection.held`, where a
# 4008 can drop it so that the close frame is not stuck behind megabytes.
TRANSPORT_BUDGET = 64 * 1024


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


class Connection:
    __slots__ = ("backlog", "closed", "closer", "codec", "dirty", "fd", "held", "held_bytes",
                 "idle", "pending", "principal", "session", "subs", "transport")  # fmt: skip

    def __init__(
        self,
        principal: str,
        session: str,
        codec: Codec,
        transport: Transport,
        closer: Peer,
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
        # Heartbeat sweeps since the peer last sent a frame (see server.hub.heartbeat).
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
