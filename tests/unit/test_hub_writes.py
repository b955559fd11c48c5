"""The hub's one write path on a simulated socket (tests/unit/hubkit.py): no socket,
no engine, milliseconds."""

from __future__ import annotations

import asyncio
import struct

from server.hub import TRANSPORT_BUDGET, Hub
from server.protocol import OP_CLOSE, OP_PONG, CloseCode, control_frame
from tests.unit.hubkit import connect, server_frames


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
    for i in range(1200):
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
    assert ids == list(range(1200)) and not peer.closes


async def test_a_close_other_than_4008_sends_what_was_held_first() -> None:
    hub = Hub(bus=None, send_queue_limit=4 << 20)  # type: ignore[arg-type]
    conn, transport, peer = connect(hub)
    for i in range(900):
        hub.send(conn, {"op": "pong", "id": i, "pad": "z" * 500})
        hub.flush()
    assert conn.held
    hub.send(conn, {"op": "pong", "id": 900})
    hub.close(conn, 1001, "going away")
    transport.client_reads_all()
    frames = server_frames(transport.read)
    assert len(frames) == 902 and frames[-1][0] == OP_CLOSE
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


async def test_a_write_moves_held_frames_without_waiting_for_the_drain_task() -> None:
    """A long flush can keep the drain task from running: the next write moves what the
    transport has room for, ahead of its own frames."""
    hub = Hub(bus=None, send_queue_limit=4 << 20)  # type: ignore[arg-type]
    conn, transport, _ = connect(hub)
    for i in range(1200):
        hub.send(conn, {"op": "pong", "id": i, "pad": "v" * 500})
        if i % 10 == 9:
            hub.flush()
    hub.flush()
    assert conn.held
    before = conn.held_bytes
    for _ in range(200):  # the client reads; no loop iteration, so no drain task runs
        transport.client_reads(8192)
    hub.send(conn, {"op": "pong", "id": 1200})
    hub.flush()
    assert conn.held is None or conn.held_bytes < before
    async with asyncio.timeout(2):
        while conn.held is not None or transport.buffer or transport.kernel:
            transport.client_reads(8192)
            await asyncio.sleep(0)
    ids = [
        int(p.split(b'"id":')[1].split(b",")[0].rstrip(b"}"))
        for _, p in server_frames(transport.read)
    ]
    assert ids == list(range(1201))
