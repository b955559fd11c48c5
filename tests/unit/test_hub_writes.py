"""The hub's one write path on a simulated socket: no socket, no engine, milliseconds.

`KernelTransport` plays an asyncio transport over a kernel that takes `room` bytes and
then nothing until the client reads; its write buffer pauses above the hub's budget and
resumes below a quarter of it, as the adapter sets asyncio's and uvloop's transports.
"""

from __future__ import annotations

import asyncio
import struct

from server.hub import TRANSPORT_BUDGET, Connection, Hub
from server.protocol import OP_CLOSE, OP_PONG, CloseCode, control_frame

LOW_WATER = TRANSPORT_BUDGET // 4


class KernelTransport:
    def __init__(self, room: int) -> None:
        self.room = room
        self.kernel = bytearray()  # taken by the kernel, not yet read by the client
        self.buffer = bytearray()  # the transport's own queue
        self.read = bytearray()  # what the client has read
        self.closing = False
        self.paused = False
        self.resumed = asyncio.Event()

    def write(self, data: bytes) -> None:
        assert not self.closing, "no write after close"
        self.buffer += data
        self._move()
        if len(self.buffer) > TRANSPORT_BUDGET and not self.paused:
            self.paused = True
            self.resumed.clear()

    def _move(self) -> None:
        n = min(len(self.buffer), self.room - len(self.kernel))
        self.kernel += self.buffer[:n]
        del self.buffer[:n]

    def client_reads_all(self) -> None:
        while self.kernel:
            self.client_reads(len(self.kernel))

    def client_reads(self, n: int) -> None:
        self.read += self.kernel[:n]
        del self.kernel[:n]
        self._move()
        if self.paused and len(self.buffer) <= LOW_WATER:
            self.paused = False
            self.resumed.set()

    def get_write_buffer_size(self) -> int:
        return len(self.buffer)

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True


class Peer:
    def __init__(self, transport: KernelTransport) -> None:
        self.transport = transport
        self.closes: list[int] = []

    def __call__(self, code: int, reason: str) -> None:
        self.closes.append(code)
        self.transport.closing = True

    async def drained(self) -> None:
        if self.transport.paused:
            await self.transport.resumed.wait()


def connect(hub: Hub, room: int = 4096) -> tuple[Connection, KernelTransport, Peer]:
    from server.protocol import JSON

    transport = KernelTransport(room)
    peer = Peer(transport)
    conn = hub.connect("p", "s", JSON, transport, peer)
    return conn, transport, peer


def server_frames(data: bytes | bytearray) -> list[tuple[int, bytes]]:
    """Whole unmasked frames; fails on a cut one."""
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        first, length = data[pos], data[pos + 1] & 0x7F
        pos += 2
        if length == 126:
            (length,) = struct.unpack("!H", data[pos : pos + 2])
            pos += 2
        elif length == 127:
            (length,) = struct.unpack("!Q", data[pos : pos + 8])
            pos += 8
        assert pos + length <= len(data), "a frame was cut"
        frames.append((first & 0x0F, bytes(data[pos : pos + length])))
        pos += length
    return frames


async def test_a_ping_flooding_non_reader_costs_at_most_the_cap() -> None:
    """Issue 13.1: every pong counts against the send cap; the socket is closed 4008
    once unsent bytes pass it, and never holds more than the cap and one frame."""
    limit = 256 * 1024
    hub = Hub(bus=None, send_queue_limit=limit)  # type: ignore[arg-type]
    conn, transport, peer = connect(hub)
    pong = control_frame(OP_PONG, b"x" * 125)
    sent = 0
    while sent < 100_000:
        hub.write_control(conn, pong)
        sent += 1
        unsent = conn.held_bytes + transport.get_write_buffer_size()
        assert unsent <= limit + len(pong), unsent
        if conn.closed:
            break
    assert peer.closes == [CloseCode.TOO_SLOW] and hub.stats.slow_closes == 1
    assert sent * len(pong) < limit + TRANSPORT_BUDGET + 2 * transport.room
    # Held bytes are dropped; the close frame follows whole pongs at once.
    assert conn.held is None
    transport.client_reads_all()
    frames = server_frames(bytes(transport.read))
    assert all(op == OP_PONG for op, _ in frames[:-1])
    assert frames[-1][0] == OP_CLOSE and struct.unpack("!H", frames[-1][1][:2])[0] == 4008
    # Only about a budget went out ahead of the close, not the cap's worth.
    assert len(transport.read) < TRANSPORT_BUDGET + 2 * len(pong) + transport.room + 8


async def test_what_the_transport_cannot_take_is_held_and_drained_in_order() -> None:
    hub = Hub(bus=None, send_queue_limit=4 << 20)  # type: ignore[arg-type]
    conn, transport, peer = connect(hub)
    for i in range(400):
        hub.send(conn, {"op": "pong", "id": i, "pad": "y" * 500})
        if i % 10 == 9:
            hub.flush()
    hub.flush()
    assert conn.held, "beyond the transport's budget, frames wait in the hub"
    assert transport.get_write_buffer_size() <= TRANSPORT_BUDGET + 10 * 600
    # The client reads; the hub moves what it holds as the transport drains.
    async with asyncio.timeout(2):
        while conn.held is not None or transport.buffer or transport.kernel:
            transport.client_reads(8192)
            await asyncio.sleep(0)
    ids = [int(p.split(b'"id":')[1].split(b",")[0]) for _, p in server_frames(transport.read)]
    assert ids == list(range(400)) and not peer.closes


async def test_a_close_other_than_4008_sends_what_was_held_first() -> None:
    hub = Hub(bus=None, send_queue_limit=4 << 20)  # type: ignore[arg-type]
    conn, transport, peer = connect(hub)
    for i in range(300):
        hub.send(conn, {"op": "pong", "id": i, "pad": "z" * 500})
        hub.flush()
    assert conn.held
    hub.send(conn, {"op": "pong", "id": 300})
    hub.close(conn, 1001, "going away")
    transport.client_reads_all()
    frames = server_frames(transport.read)
    assert len(frames) == 302 and frames[-1][0] == OP_CLOSE
    assert struct.unpack("!H", frames[-1][1][:2])[0] == 1001 and peer.closes == [1001]


async def test_a_flush_too_big_for_the_cap_is_closed_4008_with_whole_frames() -> None:
    hub = Hub(bus=None, send_queue_limit=64 * 1024)  # type: ignore[arg-type]
    conn, transport, peer = connect(hub)
    for i in range(200):
        hub.send(conn, {"op": "pong", "id": i, "pad": "w" * 1000})
    hub.flush()
    assert peer.closes == [CloseCode.TOO_SLOW]
    transport.client_reads_all()
    frames = server_frames(transport.read)
    assert frames[-1][0] == OP_CLOSE
