"""A simulated socket for the hub's unit tests: no socket, no engine, no network.

`KernelTransport` plays an asyncio transport over a kernel that takes `room` bytes and
then nothing until the client reads; its write buffer pauses above the hub's budget and
resumes below a quarter of it, as the adapter sets asyncio's and uvloop's transports.
"""

from __future__ import annotations

import asyncio
import struct

import msgpack
import orjson

from server.hub import TRANSPORT_BUDGET, Connection, Hub
from server.protocol import JSON, Codec

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


def connect(
    hub: Hub, room: int = 4096, principal: str = "p", codec: Codec = JSON
) -> tuple[Connection, KernelTransport, Peer]:
    transport = KernelTransport(room)
    peer = Peer(transport)
    conn = hub.connect(principal, "s", codec, transport, peer)
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


def messages(transport: KernelTransport, binary: bool = False) -> list[dict[str, object]]:
    """Every data frame the client can read, decoded (the client reads all it can)."""
    transport.client_reads_all()
    out = []
    for opcode, payload in server_frames(transport.read):
        if opcode in (1, 2):
            out.append(msgpack.unpackb(payload) if binary else orjson.loads(payload))
    transport.read.clear()
    return out


async def settle() -> None:
    """Let the loop run the bus's deliveries and the hub's flushes (a few rounds)."""
    for _ in range(5):
        await asyncio.sleep(0)
