"""The socket's limits on a real socket: control frames count, 4008 arrives whole and
promptly, a replay respects backpressure, masking and the codec rule (issue 13)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import sys
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from loadtest import wsproto
from server.services.container import SERVICES
from server.settings import RateLimit
from tests.integration.test_ws import hand_socket, open_tight_socket, publish, read_frame
from tests.support import receive_until, signup, start_server, stop_server

PING = wsproto.encode_frame(wsproto.OP_PING, b"p" * 125)


@pytest.fixture
def raw() -> Iterator[socket.socket]:
    sock = socket.socket()
    yield sock
    sock.close()


def split_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """The whole server frames at the start of `buf`, removed from it."""
    out = []
    while len(buf) >= 2:
        length, start = buf[1] & 0x7F, 2
        if length == 126:
            length, start = int.from_bytes(buf[2:4], "big"), 4
        elif length == 127:
            length, start = int.from_bytes(buf[2:10], "big"), 10
        if len(buf) < start + length:
            break
        out.append((buf[0] & 0x0F, bytes(buf[start : start + length])))
        del buf[: start + length]
    return out


async def test_a_ping_flooding_client_that_never_reads_is_closed_4008(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any, raw: socket.socket
) -> None:
    """Issue 13.1: pongs count against the send cap, so the server's memory for such a
    socket stays within the cap (it grew by 410 MB for 300 MB of pings)."""
    from server.app import create_app

    limit = 256 * 1024
    client = await aiohttp_client(create_app(settings.with_(send_queue_limit=limit), engine_url))
    member = await signup(client, rdb, "pinger")
    await open_tight_socket(raw, client, member.token)
    hub = client.server.app[SERVICES].hub
    (conn,) = hub.connections_of(member.user["id"])
    loop = asyncio.get_running_loop()
    burst = PING * 256
    most = 0
    for _ in range(2000):  # at most ~67 MB of pings
        try:
            await asyncio.wait_for(loop.sock_sendall(raw, burst), 5)
        except (ConnectionError, TimeoutError):
            break  # the server stopped reading: it closed the socket
        held = getattr(conn, "held_bytes", 0)  # (none before the fix: all in the transport)
        most = max(most, held + conn.transport.get_write_buffer_size())
        if conn.closed:
            break
    assert conn.closed and hub.stats.slow_closes == 1
    assert most <= limit + len(PING)


async def flood_pings_then_read(raw: socket.socket, server: Any, token: str) -> None:
    """A client with a 4 KiB receive buffer floods pings (~21 MB, well past the 4 MiB
    cap; no socket message limit, so nothing closes it first), reads only once it is
    done sending, and must get whole pongs, then the 4008 close, then the end."""
    buf = bytearray(await open_tight_socket(raw, server, token))
    loop = asyncio.get_running_loop()
    burst = PING * 256
    for _ in range(640):
        try:
            await asyncio.wait_for(loop.sock_sendall(raw, burst), 5)
        except (ConnectionError, TimeoutError):
            break
    # Only now does the client read: everything the server sent, up to the end, within
    # the close timeout (3 s) and then some for a loaded host.
    deadline = loop.time() + 10
    with contextlib.suppress(TimeoutError):
        while chunk := await asyncio.wait_for(loop.sock_recv(raw, 1 << 16),
                                              deadline - loop.time()):  # fmt: skip
            buf += chunk
    frames = split_frames(buf)
    assert not buf, f"{len(buf)} bytes of a cut frame after {len(frames)} whole ones"
    assert frames[-1][0] == wsproto.OP_CLOSE, f"EOF without a close frame: {frames[-1][0]}"
    assert struct.unpack("!H", frames[-1][1][:2])[0] == 4008
    assert all(frame == (wsproto.OP_PONG, b"p" * 125) for frame in frames[:-1])


async def test_a_ping_flooding_client_that_reads_late_gets_whole_pongs_then_4008(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any, raw: socket.socket
) -> None:
    """Issue 13.1 and 13.10 for control frames: such a client got its pongs cut inside
    a frame and EOF, no close frame: written one by one, the megabytes of pongs the
    kernel held drained at a few KB/s, past the close timeout."""
    from server.app import create_app

    client = await aiohttp_client(create_app(settings, engine_url))  # the default cap
    member = await signup(client, rdb, "latepinger")
    await flood_pings_then_read(raw, client, member.token)
    assert client.server.app[SERVICES].hub.stats.slow_closes == 1


# The flooding client as a process of its own, blocking, as the audit's was: it sends
# as fast as the server's kernel takes the pings, then reads, then prints the bytes.
FLOOD_CLIENT = """
import socket, sys, time
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
sock.connect(("127.0.0.1", int(sys.argv[1])))
sock.settimeout(5)
sock.sendall(("GET /ws HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\n"
              "Connection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\n"
              "Sec-WebSocket-Version: 13\\r\\nAuthorization: Bearer " + sys.argv[2]
              + "\\r\\n\\r\\n").encode())
head = b""
while b"\\r\\n\\r\\n" not in head:
    head += sock.recv(1)
chunk = bytes.fromhex(sys.argv[3]) * 64
try:
    for _ in range(2560):
        sock.sendall(chunk)
except OSError:
    pass
data, deadline = b"", time.monotonic() + 10
try:
    while time.monotonic() < deadline and (got := sock.recv(1 << 16)):
        data += got
except OSError:
    pass
sys.stdout.buffer.write(data)
"""


async def test_the_same_ping_flooder_on_a_served_process(engine_url: str, rdb: Any) -> None:
    """The same client, a process of its own, against `python -m server serve` (uvloop):
    pongs queued for the flush waited unchecked there for all the reads of a loop
    iteration, went out as one write of megabytes, and the close frame behind them was
    cut off by the close timeout."""
    server = start_server("--redis-url", engine_url)
    try:
        member = await signup(server, rdb, "servedpinger")
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FLOOD_CLIENT, str(server.port), member.token, PING.hex(),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(client.communicate(), 40)
    finally:
        await server.close()
        stop_server(server)
    buf = bytearray(out)
    frames = split_frames(buf)
    assert not buf, f"{len(buf)} bytes of a cut frame after {len(frames)} whole ones"
    assert frames[-1][0] == wsproto.OP_CLOSE, f"EOF without a close frame: {frames[-1][0]}"
    assert struct.unpack("!H", frames[-1][1][:2])[0] == 4008
    assert all(frame[0] == wsproto.OP_PONG for frame in frames[:-1])


async def test_pings_count_against_the_socket_message_limit(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    from server.app import create_app

    limits = {"socket": RateLimit(count=5, seconds=60, burst=5)}
    client = await aiohttp_client(create_app(settings.with_(rate_limits=limits), engine_url))
    member = await signup(client, rdb, "pingrate")
    reader, writer = await hand_socket(client, member.auth)
    writer.write(wsproto.encode_frame(wsproto.OP_PING, b"x") * 40)
    opcodes: list[int] = []
    async with asyncio.timeout(5):
        while not opcodes or opcodes[-1] != wsproto.OP_CLOSE:
            opcodes.append((await read_frame(reader))[0])
    # Five pongs (the burst), the rest unanswered, then 4029 for keeping on far past it.
    assert opcodes == [wsproto.OP_PONG] * 5 + [wsproto.OP_CLOSE]
    writer.close()


async def test_the_4008_close_reaches_a_slow_reader_promptly_and_whole(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any, raw: socket.socket
) -> None:
    """Issue 13.10 (and the fault suite's case): the close was queued behind up to the
    cap (4 MiB) and the connection cut 3 s later, so a slow reader saw a truncated frame
    and EOF. Now what the hub holds back is dropped and the close frame follows what the
    transport holds, whole frames only, within those 3 s even for a slow reader."""
    from server.app import create_app

    client = await aiohttp_client(create_app(settings, engine_url))  # the default cap
    member = await signup(client, rdb, "slowreader")
    buf = bytearray(await open_tight_socket(raw, client, member.token))
    loop = asyncio.get_running_loop()
    sub = wsproto.encode_frame(wsproto.OP_TEXT, b'{"op":"sub","id":1,"topic":"me"}')
    await loop.sock_sendall(raw, sub)
    while not any(op == wsproto.OP_TEXT for op, _ in split_frames(buf)):
        buf += await asyncio.wait_for(loop.sock_recv(raw, 4096), 5)
    hub = client.server.app[SERVICES].hub
    # ~9.6 MB at once to a reader that takes 4 KiB every 4 ms.
    publishing = asyncio.ensure_future(
        publish(rdb, engine_url, f"me:{member.user['id']}", {"pad": "y" * 12000}, 800)
    )
    frames: list[tuple[int, bytes]] = []
    async with asyncio.timeout(30):
        while not frames or frames[-1][0] != wsproto.OP_CLOSE:
            chunk = await loop.sock_recv(raw, 4096)
            assert chunk, f"EOF without a close frame ({hub.stats.slow_closes} slow closes)"
            buf += chunk
            frames += split_frames(buf)
            await asyncio.sleep(0.002)  # the client's pace, not synchronisation
    # The close frame came (before, the transport was aborted 3 s after the close was
    # queued behind megabytes, and the reader met EOF inside a frame), after whole frames.
    await publishing
    assert struct.unpack("!H", frames[-1][1][:2])[0] == 4008 and hub.stats.slow_closes == 1
    events = [json.loads(p) for op, p in frames[:-1] if op == wsproto.OP_TEXT]
    assert all(e["op"] == "event" and len(e["data"]["pad"]) == 12000 for e in events[1:])
    assert not buf, "nothing follows the close frame"


async def test_a_fast_reader_resuming_over_a_large_replay_gets_it_all(
    app_client: Any, rdb: Any, engine_url: str
) -> None:
    """Issue 13.10: 8.5 MB of replay went out in one write and a reader that kept up got
    4008 after receiving everything; the replay now goes a slice at a time."""
    member = await signup(app_client, rdb, "bigresume")
    channel = f"me:{member.user['id']}"
    ws = await app_client.ws_connect("/ws", headers=member.auth, max_msg_size=0)
    await ws.send_json({"op": "sub", "id": 1, "topic": "me"})
    since = (await receive_until(ws, lambda f: f["op"] == "ack"))[-1]["cursor"]
    await ws.close()
    cursors = await publish(rdb, engine_url, channel, {"pad": "r" * 12000}, 750)
    ws = await app_client.ws_connect("/ws", headers=member.auth, max_msg_size=0)
    await ws.send_json({"op": "sub", "id": 2, "topic": "me", "since": since})
    frames = await receive_until(ws, lambda f: f.get("cursor") == str(cursors[-1]), 30)
    assert frames[0]["op"] == "ack" and frames[0]["recovered"] is True
    assert [int(f["cursor"]) for f in frames[1:]] == cursors
    hub = app_client.server.app[SERVICES].hub
    assert hub.stats.slow_closes == 0
    await ws.send_json({"op": "ping", "id": 3})
    assert (await receive_until(ws, lambda f: f["op"] == "pong"))[-1]["id"] == 3
    await ws.close()


async def test_an_unmasked_client_frame_closes_1002(app_client: Any, rdb: Any) -> None:
    """Issue 13.9: RFC 6455 section 5.1, the server MUST close on an unmasked frame."""
    member = await signup(app_client, rdb, "unmasked")
    reader, writer = await hand_socket(app_client, member.auth)
    writer.write(wsproto.encode_frame(wsproto.OP_TEXT, b'{"op":"ping","id":1}', mask=False))
    opcode, payload = await read_frame(reader)
    assert opcode == wsproto.OP_CLOSE and wsproto.parse_close(payload)[0] == 1002
    writer.write(wsproto.encode_close(1002))
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_invalid_utf8_in_a_first_fragment_closes_1007_at_once(
    app_client: Any, rdb: Any
) -> None:
    member = await signup(app_client, rdb, "badfragment")
    reader, writer = await hand_socket(app_client, member.auth)
    writer.write(wsproto.encode_frame(wsproto.OP_TEXT, b'{"op":"\xff', fin=False))
    opcode, payload = await read_frame(reader)
    assert opcode == wsproto.OP_CLOSE and wsproto.parse_close(payload)[0] == 1007
    writer.close()


async def test_a_binary_frame_on_a_json_socket_is_read_as_msgpack(
    app_client: Any, rdb: Any
) -> None:
    """Issue 13.13: the README's codec rule; replies keep the socket's codec (JSON)."""
    member = await signup(app_client, rdb, "mixedcodec")
    ws = await app_client.ws_connect("/ws", headers=member.auth)
    await ws.send_bytes(msgpack.packb({"op": "ping", "id": 7}))
    assert await ws.receive_json(timeout=5) == {"op": "pong", "id": 7}
    await ws.send_bytes(b'{"op":"ping","id":8}')  # JSON in a binary frame is not msgpack
    reply = await ws.receive_json(timeout=5)
    assert reply["op"] == "error" and reply["code"] == "bad_frame" and reply["id"] is None
    await ws.close()


# A slow mobile client: it shrinks its receive buffer only once connected (the window it
# advertised first let the server's kernel take megabytes), floods pings, then reads
# steadily through its small window until the end.
SLOW_READER = """
import socket, sys, time
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.settimeout(5)
sock.sendall(("GET /ws HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\n"
              "Connection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\n"
              "Sec-WebSocket-Version: 13\\r\\nAuthorization: Bearer " + sys.argv[2]
              + "\\r\\n\\r\\n").encode())
head = b""
while b"\\r\\n\\r\\n" not in head:
    head += sock.recv(1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
chunk = bytes.fromhex(sys.argv[3]) * 64
try:
    for _ in range(2560):
        sock.sendall(chunk)
except OSError:
    pass
time.sleep(0.5)  # the client's own pace, not synchronisation: it reads late
data, deadline = b"", time.monotonic() + 25
try:
    while time.monotonic() < deadline and (got := sock.recv(16384)):
        data += got
except OSError:
    pass
sys.stdout.buffer.write(data)
"""


async def test_a_client_that_shrinks_its_buffer_and_reads_slowly_gets_the_4008(
    engine_url: str, rdb: Any
) -> None:
    """Issue 13.10: the kernel's send buffer held megabytes the client drains slowly; a
    fixed cut-off at 3 s sent RST before the close frame behind them had left (1006)."""
    server = start_server("--redis-url", engine_url)
    try:
        member = await signup(server, rdb, "slowmobile")
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SLOW_READER, str(server.port), member.token, PING.hex(),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(client.communicate(), 40)
    finally:
        await server.close()
        stop_server(server)
    buf = bytearray(out)
    frames = split_frames(buf)
    assert not buf, f"{len(buf)} bytes of a cut frame after {len(frames)} whole ones"
    assert frames[-1][0] == wsproto.OP_CLOSE, f"EOF without a close frame: {frames[-1][0]}"
    assert struct.unpack("!H", frames[-1][1][:2])[0] == 4008
    assert all(frame[0] == wsproto.OP_PONG for frame in frames[:-1])
