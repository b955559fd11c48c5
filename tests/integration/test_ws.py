"""The websocket protocol on a real socket: upgrade checks, ops, errors, limits, resume."""

from __future__ import annotations

import asyncio
import fcntl
import json
import socket
import struct
import termios
from typing import Any

import aiohttp
import msgpack
import pytest

from loadtest import wsproto
from server.bus import RedisBus, encode_body
from server.services.container import SERVICES
from server.store.resp import EngineClient
from tests.support import receive_until, signup


async def publish(rdb: Any, engine_url: str, channel: str, data: Any, n: int = 1) -> list[int]:
    engine = EngineClient(engine_url)
    bus = RedisBus(engine_url, rdb, engine)
    try:
        seqs = []
        for _ in range(n):
            seq = await bus.publish([(channel, encode_body("test", data, None))])
            assert seq is not None  # no guard: every publish is sequenced
            seqs.append(seq)
        return seqs
    finally:
        await engine.aclose()


async def test_upgrade_needs_a_session(app_client: Any, rdb: Any) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await app_client.ws_connect("/ws")
    assert info.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await app_client.ws_connect("/ws", headers={"Authorization": "Bearer nope"})
    assert info.value.status == 401


async def test_cross_site_origin_is_refused(app_client: Any, rdb: Any) -> None:
    member = await signup(app_client, rdb, "aki")
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await app_client.ws_connect(
            "/ws", headers={**member.auth, "Origin": "https://evil.example"}
        )
    assert info.value.status == 403
    own = f"http://{app_client.host}:{app_client.port}"
    ws = await app_client.ws_connect("/ws", headers={**member.auth, "Origin": own})
    await ws.send_json({"op": "ping", "id": 1})
    assert await ws.receive_json() == {"op": "pong", "id": 1}
    await ws.close()


async def test_cookie_authenticates_the_upgrade(app_client: Any, rdb: Any) -> None:
    await signup(app_client, rdb, "cookie_user")  # sets the cookie in the client's jar
    ws = await app_client.ws_connect("/ws")
    await ws.send_json({"op": "ping", "id": "a"})
    assert await ws.receive_json() == {"op": "pong", "id": "a"}
    await ws.close()


@pytest.mark.parametrize("proto", ["echohub.v1.json", "echohub.v1.msgpack"])
async def test_both_codecs(app_client: Any, rdb: Any, engine_url: str, proto: str) -> None:
    member = await signup(app_client, rdb, "codec")
    ws = await app_client.ws_connect("/ws", headers=member.auth, protocols=[proto])
    assert ws.protocol == proto
    binary = proto.endswith("msgpack")

    async def send(obj: dict[str, Any]) -> None:
        if binary:
            await ws.send_bytes(msgpack.packb(obj))
        else:
            await ws.send_json(obj)

    await send({"op": "sub", "id": 1, "topic": "me"})
    frames = await receive_until(ws, lambda f: f["op"] == "ack")
    ack = frames[-1]
    assert ack["topic"] == "me" and ack["id"] == 1 and "recovered" not in ack
    seqs = await publish(rdb, engine_url, f"me:{member.user['id']}", {"hello": "世界"})
    frames = await receive_until(ws, lambda f: f["op"] == "event")
    event = frames[-1]
    assert event == {"op": "event", "topic": "me", "cursor": str(seqs[0]), "type": "test",
                     "data": {"hello": "世界"}}  # fmt: skip
    msg = await ws.receive(timeout=0.2) if False else None
    assert msg is None
    await ws.close()


async def test_malformed_frames_get_errors_and_socket_stays(app_client: Any, rdb: Any) -> None:
    member = await signup(app_client, rdb, "bad_frames")
    ws = await app_client.ws_connect("/ws", headers=member.auth)
    cases = [
        ("{oops", "bad_frame", None),
        ('{"op":"jump","id":2}', "unknown_op", 2),
        ('{"op":"sub","id":3,"topic":42}', "bad_topic", 3),
        ('{"op":"sub","id":4,"topic":"home","since":"x"}', "bad_cursor", 4),
        ('{"op":"sub","id":5,"topic":"no_such_topic"}', "unknown_topic", 5),
        ('{"op":"sub","id":6,"topic":"mod"}', "forbidden", 6),
    ]
    for raw, code, request_id in cases:
        await ws.send_str(raw)
        reply = await ws.receive_json(timeout=5)
        assert reply["op"] == "error" and reply["code"] == code, reply
        assert reply["id"] == request_id
        assert reply["message"]
    await ws.send_bytes(b"\xc1\xc1")  # binary on a JSON socket is read as msgpack: invalid
    assert (await ws.receive_json(timeout=5))["code"] == "bad_frame"
    await ws.send_json({"op": "ping", "id": 7})
    assert await ws.receive_json(timeout=5) == {"op": "pong", "id": 7}
    await ws.close()


async def test_too_many_malformed_frames_close_4400(app_client: Any, rdb: Any) -> None:
    member = await signup(app_client, rdb, "abuser")
    ws = await app_client.ws_connect("/ws", headers=member.auth)
    for _ in range(11):
        await ws.send_str("garbage")
    codes = []
    async with asyncio.timeout(5):
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                codes.append(msg.json()["code"])
    assert codes.count("bad_frame") >= 10
    assert ws.close_code == 4400


async def test_oversize_frame_closes_1009(app_client: Any, rdb: Any) -> None:
    member = await signup(app_client, rdb, "big_frame")
    ws = await app_client.ws_connect("/ws", headers=member.auth)
    await ws.send_str('{"op":"ping","id":1,"pad":"' + "x" * 17000 + '"}')
    msg = await ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == 1009


async def test_sub_with_since_replays_in_order_then_live(
    app_client: Any, rdb: Any, engine_url: str
) -> None:
    member = await signup(app_client, rdb, "resumer")
    channel = f"me:{member.user['id']}"
    ws = await app_client.ws_connect("/ws", headers=member.auth)
    await ws.send_json({"op": "sub", "id": 1, "topic": "me"})
    start = int((await receive_until(ws, lambda f: f["op"] == "ack"))[-1]["cursor"])
    first = await publish(rdb, engine_url, channel, {"n": 0})
    await receive_until(ws, lambda f: f["op"] == "event")
    await ws.close()
    missed = await publish(rdb, engine_url, channel, {"n": 1}, n=5)
    ws = await app_client.ws_connect("/ws", headers=member.auth)
    await ws.send_json({"op": "sub", "id": 2, "topic": "me", "since": str(first[0])})
    frames = await receive_until(ws, lambda f: f.get("cursor") == str(missed[-1]))
    assert frames[0] == {"op": "ack", "id": 2, "topic": "me", "cursor": str(first[0]),
                         "recovered": True}  # fmt: skip
    assert [int(f["cursor"]) for f in frames[1:]] == missed
    live = await publish(rdb, engine_url, channel, {"n": 2})
    frame = (await receive_until(ws, lambda f: f["op"] == "event"))[-1]
    assert int(frame["cursor"]) == live[0]
    assert start < first[0]
    await ws.close()


async def test_since_too_old_is_not_recovered(app_client: Any, rdb: Any, engine_url: str) -> None:
    member = await signup(app_client, rdb, "too_old")
    channel = f"me:{member.user['id']}"
    # History is capped per topic; once trimmed past a cursor the gap cannot be filled.
    engine = EngineClient(engine_url)
    bus = RedisBus(engine_url, rdb, engine, history_size=10)
    seqs: list[int] = []
    for i in range(12):
        seq = await bus.publish([(channel, encode_body("test", {"n": i}, None))])
        assert seq is not None  # no guard: every publish is sequenced
        seqs.append(seq)
    await engine.aclose()
    assert await rdb.xlen(f"eh:hist:{channel}") == 10
    ws = await app_client.ws_connect("/ws", headers=member.auth)
    await ws.send_json({"op": "sub", "id": 1, "topic": "me", "since": str(seqs[0])})
    ack = (await receive_until(ws, lambda f: f["op"] == "ack"))[-1]
    assert ack["recovered"] is False
    assert int(ack["cursor"]) >= seqs[-1]
    # A cursor from the future cannot be vouched for either.
    await ws.send_json({"op": "sub", "id": 2, "topic": "public", "since": str(seqs[-1] * 10)})
    ack = (await receive_until(ws, lambda f: f["op"] == "ack"))[-1]
    assert ack["recovered"] is False
    await ws.close()


async def test_unsub_stops_delivery(app_client: Any, rdb: Any, engine_url: str) -> None:
    member = await signup(app_client, rdb, "unsub")
    ws = await app_client.ws_connect("/ws", headers=member.auth)
    await ws.send_json({"op": "sub", "id": 1, "topic": "public"})
    await receive_until(ws, lambda f: f["op"] == "ack")
    await ws.send_json({"op": "unsub", "id": 2, "topic": "public"})
    assert await ws.receive_json(timeout=5) == {"op": "ack", "id": 2, "topic": "public"}
    await publish(rdb, engine_url, "public", {"n": 1})
    await ws.send_json({"op": "ping", "id": 3})
    # The pong is the next frame: the event after the unsub never came.
    assert await ws.receive_json(timeout=5) == {"op": "pong", "id": 3}
    await ws.close()


async def open_tight_socket(raw: socket.socket, client: Any, token: str) -> bytes:
    """Upgrade `raw` (with a 4 KiB receive buffer) to a websocket; the bytes after the 101."""
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((client.host, client.port))
    raw.setblocking(False)
    loop = asyncio.get_running_loop()
    request = (
        f"GET /ws HTTP/1.1\r\nHost: {client.host}:{client.port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    await loop.sock_sendall(raw, request)
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(raw, 1)
    assert b" 101 " in head
    return head.split(b"\r\n\r\n", 1)[1]


@pytest.fixture
def raw_socket() -> Any:
    sock = socket.socket()
    yield sock
    sock.close()


async def test_slow_reader_closed_4008_fast_reader_unaffected(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any, raw_socket: socket.socket
) -> None:
    from server.app import create_app

    client = await aiohttp_client(create_app(settings.with_(send_queue_limit=256 * 1024),
                                             engine_url))  # fmt: skip
    slow_member = await signup(client, rdb, "slowpoke")
    fast_member = await signup(client, rdb, "speedy")
    fast = await client.ws_connect("/ws", headers=fast_member.auth)
    await fast.send_json({"op": "sub", "id": 1, "topic": "public"})
    await receive_until(fast, lambda f: f["op"] == "ack")

    # The slow reader: a raw socket with a tiny receive buffer that never reads.
    raw = raw_socket
    await open_tight_socket(raw, client, slow_member.token)
    loop = asyncio.get_running_loop()
    sub = b'{"op":"sub","id":1,"topic":"public"}'
    mask = b"\x00\x00\x00\x00"
    await loop.sock_sendall(raw, bytes((0x81, 0x80 | len(sub))) + mask + sub)

    big = {"pad": "x" * 12000}
    services = client.server.app[SERVICES]
    hub = services.hub
    bus = RedisBus(engine_url, rdb, services.engine)
    published = received = 0

    async def drain_fast(timeout: float) -> None:
        nonlocal received
        while received < published:
            try:
                msg = await fast.receive(timeout=timeout)
            except TimeoutError:
                return
            assert msg.type == aiohttp.WSMsgType.TEXT
            received += msg.json()["op"] == "event"

            if received == published:
                return

    while hub.stats.slow_closes == 0:
        assert published < 5000, "the slow reader was never closed"
        await asyncio.gather(
            *(bus.publish([("public", encode_body("test", big, None))]) for _ in range(50))
        )
        published += 50
        await drain_fast(0.01)
    # Everything published reached the fast reader, in order, while the slow one was cut.
    await drain_fast(5)
    assert received == published
    raw.close()
    await fast.close()


@pytest.mark.parametrize("also", [None, "me"], ids=["written-in-fan-out", "written-in-flush"])
async def test_a_reader_that_falls_behind_gets_every_frame_whole_and_in_order(
    app_client: Any, rdb: Any, raw_socket: socket.socket, also: str | None
) -> None:
    """Frames go straight to the socket only while the transport holds nothing: after
    the kernel took part of a frame, or a pong waits in the transport, the next frames
    queue behind them even when the kernel has room again (the reads below free room
    and the hub writes before the loop can drain the transport). With one subscription
    the fan-out writes; with two, the flush does."""
    from server.hub import Event

    member = await signup(app_client, rdb, "laggard")
    raw = raw_socket
    leftover = await open_tight_socket(raw, app_client, member.token)
    loop = asyncio.get_running_loop()
    sub = b'{"op":"sub","id":1,"topic":"public"}'
    await loop.sock_sendall(raw, wsproto.encode_frame(wsproto.OP_TEXT, sub))
    hub = app_client.server.app[SERVICES].hub
    messages: list[dict[str, Any]] = []
    pongs: list[bytes] = []
    arrivals: list[str] = []

    def on_message(data: bytes | bytearray, start: int, end: int, op: int) -> None:
        messages.append(json.loads(data[start:end]))
        arrivals.append("message")

    def on_control(op: int, payload: bytes) -> None:
        assert op == wsproto.OP_PONG
        pongs.append(payload)
        arrivals.append("pong")

    parser = wsproto.FrameParser(on_message, on_control)
    parser.feed(leftover)
    while not messages:
        parser.feed(await loop.sock_recv(raw, 65536))
    assert messages.pop()["op"] == "ack"
    if also:
        sub = f'{{"op":"sub","id":2,"topic":"{also}"}}'.encode()
        await loop.sock_sendall(raw, wsproto.encode_frame(wsproto.OP_TEXT, sub))
        while not messages:
            parser.feed(await loop.sock_recv(raw, 65536))
        assert messages.pop()["op"] == "ack"
    arrivals.clear()
    (conn,) = hub.connections_of(member.user["id"])
    transport = conn.transport
    # A fixed send buffer: the kernel's autotuning would otherwise take megabytes.
    with socket.fromfd(conn.fd, socket.AF_INET, socket.SOCK_STREAM) as server_side:
        server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
    seq = 10**18
    sent: list[int] = []

    def publish(size: int) -> None:
        nonlocal seq
        seq += 1
        sent.append(seq)
        hub.dispatch("public", Event(seq, "t", {"n": seq, "pad": "x" * size}))
        hub.flush()

    def unread(fd: int) -> int:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0])

    def read_some() -> None:
        """Free room in the kernel, and write at once, before the loop runs."""
        for _ in range(64):
            try:
                parser.feed(raw.recv(65536))
            except BlockingIOError:
                break
        publish(100)

    # 1. A frame the kernel takes only part of.
    while not transport.get_write_buffer_size():
        assert len(sent) < 200, "the kernel never filled up"
        publish(60_000)
    read_some()
    # 2. Pongs the kernel has no room for, once everything before them was read.
    while len(messages) < len(sent):
        parser.feed(await asyncio.wait_for(loop.sock_recv(raw, 65536), 5))
    publish(100)  # its flush finds the transport empty again
    while len(messages) < len(sent):
        parser.feed(await asyncio.wait_for(loop.sock_recv(raw, 65536), 5))
    assert not transport.get_write_buffer_size()
    pings: list[bytes] = []
    while not transport.get_write_buffer_size():
        assert len(pings) < 5000, "the pongs never filled the kernel"
        batch = [f"{len(pings) + i:0125d}".encode() for i in range(50)]
        pings += batch
        await loop.sock_sendall(raw, b"".join(wsproto.encode_frame(wsproto.OP_PING, p)
                                              for p in batch))  # fmt: skip
        for _ in range(1000):  # until the server has read them all (on this loop)
            if not unread(conn.fd):
                break
            await asyncio.sleep(0)
        else:
            raise AssertionError("the server never read the pings")
    read_some()
    while len(messages) < len(sent) or len(pongs) < len(pings):
        data = await asyncio.wait_for(loop.sock_recv(raw, 65536), 5)
        assert data, "the server closed the socket"
        parser.feed(data)
    assert [m["cursor"] for m in messages] == [str(s) for s in sent]
    assert all(m["data"]["n"] == int(m["cursor"]) for m in messages)
    assert pongs == pings
    # The message written after the pongs arrived after them.
    assert arrivals[-len(pings) - 1 :] == ["pong"] * len(pings) + ["message"]
    assert not conn.closed


async def test_shutdown_closes_with_1001(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    from server.app import create_app

    client = await aiohttp_client(create_app(settings, engine_url))
    member = await signup(client, rdb, "leaver")
    ws = await client.ws_connect("/ws", headers=member.auth)
    await ws.send_json({"op": "ping", "id": 1})
    await ws.receive_json(timeout=5)
    closing = asyncio.create_task(client.server.close())
    msg = await ws.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.CLOSE
    assert msg.data == 1001
    await ws.close()
    await closing


async def test_logout_closes_that_sessions_sockets_4001(app_client: Any, rdb: Any) -> None:
    member = await signup(app_client, rdb, "leaving")
    creds = {"handle": "leaving", "password": "correct horse battery"}
    login = await app_client.post("/api/login", json=creds)
    other_token = (await login.json())["token"]
    ended = await app_client.ws_connect("/ws", headers=member.auth)
    kept = await app_client.ws_connect("/ws", headers={"Authorization": f"Bearer {other_token}"})
    resp = await app_client.post("/api/logout", headers=member.auth)
    assert resp.status == 200
    msg = await ended.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001
    await kept.send_json({"op": "ping", "id": 1})
    assert await kept.receive_json(timeout=5) == {"op": "pong", "id": 1}
    await kept.close()


async def test_heartbeat_drops_a_dead_peer(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    from server.app import create_app

    client = await aiohttp_client(create_app(settings.with_(heartbeat=0.2), engine_url))
    member = await signup(client, rdb, "silent")
    # A peer that never answers pings (autoping off) is closed by the server.
    ws = await client.ws_connect("/ws", headers=member.auth, autoping=False)
    kinds = []
    async with asyncio.timeout(5):
        while True:
            msg = await ws.receive()
            kinds.append(msg.type)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
    assert aiohttp.WSMsgType.PING in kinds
    hub = client.server.app[SERVICES].hub
    assert hub.connection_count == 0


async def test_heartbeat_keeps_a_peer_that_answers(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    from server.app import create_app

    client = await aiohttp_client(create_app(settings.with_(heartbeat=0.2), engine_url))
    member = await signup(client, rdb, "chatty")
    # The client answers pings (autoping, while it reads) and says nothing else for
    # many heartbeats.
    ws = await client.ws_connect("/ws", headers=member.auth)
    frames: list[Any] = []

    async def read() -> None:
        async for msg in ws:
            frames.append(msg.json())

    reader = asyncio.create_task(read())
    await asyncio.sleep(1.0)
    hub = client.server.app[SERVICES].hub
    assert hub.connection_count == 1 and hub.stats.dead_peers == 0
    # The server answers a client's ping too (autoping off on the server side).
    await ws.ping(b"hello")
    await ws.send_json({"op": "ping", "id": 1})
    async with asyncio.timeout(5):
        while not frames:
            await asyncio.sleep(0.01)
    assert frames == [{"op": "pong", "id": 1}]
    await ws.close()
    await reader


async def test_ack_cursor_on_an_already_live_channel_is_exact(
    app_client: Any, rdb: Any, engine_url: str
) -> None:
    member = await signup(app_client, rdb, "exact")
    first = await app_client.ws_connect("/ws", headers=member.auth)
    await first.send_json({"op": "sub", "id": 1, "topic": "public"})
    await receive_until(first, lambda f: f["op"] == "ack")
    before = await publish(rdb, engine_url, "public", {"n": "before"})
    await receive_until(first, lambda f: f["op"] == "event")
    # `public` is now live on this process: the second ack needs no engine call.
    second = await app_client.ws_connect("/ws", headers=member.auth)
    await second.send_json({"op": "sub", "id": 2, "topic": "public"})
    cursor = (await receive_until(second, lambda f: f["op"] == "ack"))[-1]["cursor"]
    assert int(cursor) >= before[0]
    after = await publish(rdb, engine_url, "public", {"n": "after"}, n=2)
    live = [f for f in await receive_until(second, lambda f: f.get("cursor") == str(after[-1]))
            if f["op"] == "event"]  # fmt: skip
    assert [int(f["cursor"]) for f in live] == after
    # Resuming from that cursor replays exactly what the second socket got live.
    third = await app_client.ws_connect("/ws", headers=member.auth)
    await third.send_json({"op": "sub", "id": 3, "topic": "public", "since": cursor})
    frames = await receive_until(third, lambda f: f.get("cursor") == str(after[-1]))
    assert frames[0]["op"] == "ack" and frames[0]["recovered"] is True
    assert [int(f["cursor"]) for f in frames[1:]] == after
    for ws in (first, second, third):
        await ws.close()


async def test_unknown_member_topic(app_client: Any, rdb: Any) -> None:
    member = await signup(app_client, rdb, "lonely")
    ws = await app_client.ws_connect("/ws", headers=member.auth)
    for topic in ("user:nobody_here", "user:x", "user:" + "y" * 30):
        await ws.send_json({"op": "sub", "id": topic, "topic": topic})
        reply = await ws.receive_json(timeout=5)
        assert reply["op"] == "error" and reply["code"] == "user_not_found", reply
    await ws.close()


async def hand_socket(client: Any, auth: dict[str, str]) -> Any:
    """A websocket by hand, to send what aiohttp's client never does (fragments, bad
    frames). Returns (reader, writer) after the 101."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    host = f"{client.host}:{client.port}"
    key = wsproto.new_key()
    writer.write(wsproto.handshake_request(host, "/ws", key, headers=list(auth.items())))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert wsproto.accept_for(key).encode() in head
    return reader, writer


async def read_frame(reader: Any) -> tuple[int, bytes]:
    first, second = await asyncio.wait_for(reader.readexactly(2), 5)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return first & 0x0F, await reader.readexactly(length)


async def test_fragmented_message_and_control_frames(app_client: Any, rdb: Any) -> None:
    member = await signup(app_client, rdb, "fragments")
    reader, writer = await hand_socket(app_client, member.auth)
    enc = wsproto.encode_frame
    writer.write(enc(wsproto.OP_TEXT, b'{"op":"pi', fin=False))
    writer.write(enc(wsproto.OP_CONT, b'ng","id"', fin=False))
    writer.write(enc(wsproto.OP_PING, b"hey"))  # control frames may come between fragments
    writer.write(enc(wsproto.OP_CONT, b":5}"))
    assert await read_frame(reader) == (wsproto.OP_PONG, b"hey")
    opcode, payload = await read_frame(reader)
    assert opcode == wsproto.OP_TEXT and json.loads(payload) == {"op": "pong", "id": 5}
    # The client closes: the server answers 1000 and ends the connection.
    writer.write(wsproto.encode_close(1000))
    opcode, payload = await read_frame(reader)
    assert opcode == wsproto.OP_CLOSE and wsproto.parse_close(payload)[0] == 1000
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    hub = app_client.server.app[SERVICES].hub
    async with asyncio.timeout(5):
        while hub.connection_count:
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (wsproto.encode_frame(wsproto.OP_TEXT, b"\xff\xfe"), 1007),  # text that is not UTF-8
        (wsproto.encode_frame(wsproto.OP_CONT, b"x"), 1002),  # continuation of nothing
        (bytes((0x81 | 0x40, 0x80)) + b"\0\0\0\0", 1002),  # RSV1 without an extension
    ],
)
async def test_broken_frames_close_the_socket(
    app_client: Any, rdb: Any, frame: bytes, code: int
) -> None:
    member = await signup(app_client, rdb, "broken")
    reader, writer = await hand_socket(app_client, member.auth)
    writer.write(frame)
    opcode, payload = await read_frame(reader)
    assert opcode == wsproto.OP_CLOSE and wsproto.parse_close(payload)[0] == code
    writer.write(wsproto.encode_close(code))
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_frames_trickling_in_byte_by_byte(app_client: Any, rdb: Any) -> None:
    member = await signup(app_client, rdb, "trickle")
    reader, writer = await hand_socket(app_client, member.auth)
    padded = b'{"op":"ping","id":1,"pad":"' + b"x" * 200 + b'"}'
    frames = wsproto.encode_frame(wsproto.OP_TEXT, padded)
    frames += wsproto.encode_frame(wsproto.OP_TEXT, b'{"op":"ping","id":2}')
    for i in range(len(frames)):
        writer.write(frames[i : i + 1])
        await writer.drain()
        if i % 16 == 0:
            await asyncio.sleep(0.001)
    for request_id in (1, 2):
        opcode, payload = await read_frame(reader)
        reply = json.loads(payload)
        assert opcode == wsproto.OP_TEXT and reply["id"] == request_id, reply
    writer.close()


async def test_frames_keep_their_order_when_the_socket_backs_up(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any, raw_socket: socket.socket
) -> None:
    """Frames go straight to the socket while the transport has nothing queued, and
    through the transport once the kernel pushes back: the reader sees every frame once,
    in order, across both paths."""
    from server.app import create_app

    app_client = await aiohttp_client(
        create_app(settings.with_(send_queue_limit=64 * 1024 * 1024), engine_url)
    )
    member = await signup(app_client, rdb, "backlog")
    raw = raw_socket
    buf = await open_tight_socket(raw, app_client, member.token)
    loop = asyncio.get_running_loop()
    sub = b'{"op":"sub","id":1,"topic":"me"}'
    await loop.sock_sendall(raw, bytes((0x81, 0x80 | len(sub))) + b"\x00\x00\x00\x00" + sub)

    def frames() -> list[dict[str, Any]]:
        nonlocal buf
        out = []
        while len(buf) >= 2:
            length, start = buf[1] & 0x7F, 2
            if length == 126:
                length, start = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                length, start = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < start + length:
                break
            out.append(json.loads(buf[start : start + length]))
            buf = buf[start + length :]
        return out

    received: list[dict[str, Any]] = []
    while not any(f.get("op") == "ack" for f in received):
        buf += await loop.sock_recv(raw, 65536)
        received += frames()
    hub = app_client.server.app[SERVICES].hub
    (conn,) = hub.connections_of(member.user["id"])
    assert conn.fd == raw_socket_peer_fd(conn)  # the direct path is in use
    sent = 800
    # ~6.4 MB to a reader that is not reading: more than the kernel's socket buffers
    # take, so writes come back short and the rest queues in the transport.
    await publish(rdb, engine_url, f"me:{member.user['id']}", {"pad": "y" * 8000}, sent)
    events: list[dict[str, Any]] = []
    while len(events) < sent:
        chunk = await asyncio.wait_for(loop.sock_recv(raw, 65536), 10)
        assert chunk, "the server closed the socket"
        buf += chunk
        events += [f for f in frames() if f.get("op") == "event"]
    cursors = [int(e["cursor"]) for e in events]
    assert len(events) == sent and cursors == sorted(set(cursors))


def raw_socket_peer_fd(conn: Any) -> int:
    return int(conn.transport.get_extra_info("socket").fileno())


async def test_requests_behind_a_sub_wait_for_its_ack(app_client: Any, rdb: Any) -> None:
    """A post or a malformed frame sent right behind a `sub` is answered after the sub's
    ack, and the post then reaches the subscription; a post with nothing ahead of it
    starts at once, concurrently with the next."""
    member = await signup(app_client, rdb, "queued")
    ws = await app_client.ws_connect("/ws", headers=member.auth)
    await ws.send_json({"op": "sub", "id": 1, "topic": "public"})
    await ws.send_str("{not json")
    await ws.send_json({"op": "post", "id": 2, "text": "first"})
    await ws.send_json({"op": "post", "id": 3, "text": "second"})
    first = await ws.receive_json(timeout=5)
    assert first["op"] == "ack" and first["id"] == 1, first
    second = await ws.receive_json(timeout=5)
    assert second["op"] == "error" and second["code"] == "bad_frame", second
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while len(frames) < 4:  # two acks and two events, in any order
            frames.append(await ws.receive_json())
    texts = [f["data"]["text"] for f in frames if f["op"] == "event"]
    assert sorted(texts) == ["first", "second"]
    acks = {f["id"]: f["post"]["text"] for f in frames if f["op"] == "ack"}
    assert acks == {2: "first", 3: "second"}
    await ws.close()


async def test_before_flush_hooks_run_ahead_of_each_write_out(
    app_client: Any, rdb: Any, engine_url: str
) -> None:
    """What waits to be written elsewhere (the engine's requests) is written before a
    fan-out flush, which can take milliseconds; a flush with nothing to write skips it."""
    member = await signup(app_client, rdb, "hooked")
    ws = await app_client.ws_connect("/ws", headers=member.auth)
    await ws.send_json({"op": "sub", "id": 1, "topic": "public"})
    await receive_until(ws, lambda f: f["op"] == "ack")
    hub = app_client.server.app[SERVICES].hub
    calls: list[int] = []
    hub.before_flush.append(lambda: calls.append(hub.stats.frames_out))
    frames_before = hub.stats.frames_out
    await publish(rdb, engine_url, "public", {"n": 1})
    await receive_until(ws, lambda f: f["op"] == "event")
    # Called before the event's frame was counted out, i.e. before it was written.
    assert calls and calls[0] == frames_before
    seen = len(calls)
    hub.flush()
    assert len(calls) == seen
    await ws.close()


async def test_a_flush_first_takes_what_the_bus_has_not_read_yet(
    app_client: Any, rdb: Any, engine_url: str
) -> None:
    """Events the engine sent while the loop was busy go out in the next flush, not
    after it: the flush reads the pub/sub socket itself first."""
    import select

    import redis

    from server.bus import channel_key, encode_body

    member = await signup(app_client, rdb, "prompt")
    ws = await app_client.ws_connect("/ws", headers=member.auth)
    await ws.send_json({"op": "sub", "id": 1, "topic": "public"})
    await receive_until(ws, lambda f: f["op"] == "ack")
    svc = app_client.server.app[SERVICES]
    hub, bus = svc.hub, svc.bus
    before = hub.stats.events_in
    # Published by a blocking client while this loop cannot run, so the message waits
    # in the bus's socket, unread by the loop.
    seq = 10**18
    with redis.Redis.from_url(engine_url) as blocking:
        blocking.publish(channel_key("public"), f"{seq} ".encode() + encode_body("x", {}, None))
    assert select.select([bus._proto.fd], [], [], 5)[0], "the engine never sent it"
    bus.read_now()
    assert hub.stats.events_in == before + 1
    frame = (await receive_until(ws, lambda f: f["op"] == "event"))[-1]
    assert frame["cursor"] == str(seq) and frame["type"] == "x"
    await ws.close()


async def test_one_batch_for_several_subscriptions_of_a_socket_is_one_write(
    app_client: Any, rdb: Any, engine_url: str
) -> None:
    import redis

    from server.bus import channel_key, encode_body

    aki = await signup(app_client, rdb, "aki")
    cho = await signup(app_client, rdb, "cho")
    ws = await app_client.ws_connect("/ws", headers=aki.auth)
    for n, topic in enumerate(("public", "user:cho")):
        await ws.send_json({"op": "sub", "id": n, "topic": topic})
        await receive_until(ws, lambda f: f["op"] == "ack")
    hub = app_client.server.app[SERVICES].hub
    writes, frames = hub.stats.writes, hub.stats.frames_out
    base = 10**17
    # Published by a blocking client while this loop cannot run: one batch, read at once.
    with redis.Redis.from_url(engine_url) as blocking:
        for n, channel in enumerate(("public", f"user:{cho.user['id']}") * 2):
            body = f"{base + n} ".encode() + encode_body("t", {"n": n}, None)
            blocking.publish(channel_key(channel), body)
    got = [(await ws.receive_json(timeout=5))["data"]["n"] for _ in range(4)]
    assert sorted(got) == [0, 1, 2, 3]
    assert (hub.stats.writes - writes, hub.stats.frames_out - frames) == (1, 4)
    await ws.close()


async def test_one_batch_mixing_audiences_and_channels_keeps_each_topics_order(
    app_client: Any, rdb: Any, engine_url: str
) -> None:
    """A batch read at once is fanned out whole to plain subscriptions, and event by
    event where an audience or a topic fed by several channels needs it: each member
    gets what is theirs, in cursor order, every frame counted."""
    import redis

    from server.bus import channel_key, encode_body
    from server.hub import Audience

    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    cho = await signup(app_client, rdb, "cho")
    assert (await app_client.post("/api/users/cho/follow", headers=ben.auth)).status == 200
    on_public = await app_client.ws_connect("/ws", headers=aki.auth)
    await on_public.send_json({"op": "sub", "id": 1, "topic": "public"})
    await receive_until(on_public, lambda f: f["op"] == "ack")
    on_home = await app_client.ws_connect("/ws", headers=ben.auth)
    await on_home.send_json({"op": "sub", "id": 1, "topic": "home"})
    await receive_until(on_home, lambda f: f["op"] == "ack")
    hub = app_client.server.app[SERVICES].hub
    frames_before = hub.stats.frames_out
    aki_id, ben_id, cho_id = aki.user["id"], ben.user["id"], cho.user["id"]
    others = Audience(None, frozenset({aki_id}))
    only_aki = Audience(frozenset({aki_id}))
    plan = [
        ("public", None), ("public", others), (f"user:{cho_id}", None),
        ("public", only_aki), (f"user:{ben_id}", None), ("public", None),
        (f"user:{cho_id}", Audience(None, frozenset({ben_id}))), (f"user:{cho_id}", None),
    ]  # fmt: skip
    base = 10**17
    # Published by a blocking client while this loop cannot run: one batch, read at once.
    with redis.Redis.from_url(engine_url) as blocking:
        for n, (channel, audience) in enumerate(plan):
            body = encode_body("t", {"n": n}, audience)
            blocking.publish(channel_key(channel), f"{base + n} ".encode() + body)

    async def numbers(ws: Any, count: int) -> list[tuple[str, int]]:
        got: list[tuple[str, int]] = []
        while len(got) < count:
            frame = await ws.receive_json(timeout=5)
            got.append((frame["topic"], frame["data"]["n"]))
            assert int(frame["cursor"]) == base + frame["data"]["n"]
        return got

    assert await numbers(on_public, 3) == [("public", 0), ("public", 3), ("public", 5)]
    assert await numbers(on_home, 3) == [("home", 2), ("home", 4), ("home", 7)]
    assert hub.stats.frames_out - frames_before == 6
    await on_public.close()
    await on_home.close()
