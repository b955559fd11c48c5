"""The lean websocket client: sans-I/O core tables, then real sockets to aiohttp."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
from aiohttp import WSMsgType, web

from loadtest import wsproto
from loadtest.client import (
    Counters,
    CountingParser,
    EchoHubSocket,
    LeanWebSocket,
    connect_echohub,
    open_socket,
)
from loadtest.codec import CODECS, marker_text, parse_marker, parse_sio, sio_event
from loadtest.stats import SeqTracker

# --- sans-I/O ------------------------------------------------------------------------


def test_accept_key_matches_rfc6455_example() -> None:
    assert wsproto.accept_for("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_handshake_request_carries_subprotocols_and_headers() -> None:
    req = wsproto.handshake_request(
        "127.0.0.1:1", "/ws", "k", subprotocols=["a", "b"], headers=[("Authorization", "Bearer t")]
    )
    text = req.decode()
    assert text.startswith("GET /ws HTTP/1.1\r\n")
    assert "Sec-WebSocket-Protocol: a, b\r\n" in text
    assert "Authorization: Bearer t\r\n" in text
    assert text.endswith("\r\n\r\n")


def test_handshake_response_incomplete_refused_and_bad_accept() -> None:
    key = wsproto.new_key()
    assert wsproto.parse_handshake_response(b"HTTP/1.1 101 Switching", key) is None
    with pytest.raises(wsproto.HandshakeRefused) as refused:
        wsproto.parse_handshake_response(b"HTTP/1.1 401 Unauthorized\r\n\r\n{}", key)
    assert refused.value.status == 401
    bad = b"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: nope\r\n\r\n"
    with pytest.raises(wsproto.ProtocolError):
        wsproto.parse_handshake_response(bad, key)
    good = (
        f"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: {wsproto.accept_for(key)}\r\n"
        "Sec-WebSocket-Protocol: echohub.v1.json\r\n\r\nXY"
    ).encode()
    parsed = wsproto.parse_handshake_response(good, key)
    assert parsed is not None
    resp, used = parsed
    assert resp.subprotocol == "echohub.v1.json"
    assert good[used:] == b"XY"


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 65535, 65536, 70000])
def test_masking_roundtrips_and_lengths_are_encoded(size: int) -> None:
    payload = bytes(range(256)) * (size // 256 + 1)
    payload = payload[:size]
    frame = wsproto.encode_frame(wsproto.OP_BINARY, payload)
    assert frame[0] == 0x82 and frame[1] & 0x80
    n = frame[1] & 0x7F
    off = 2 if n < 126 else 4 if n == 126 else 10
    key = frame[off : off + 4]
    assert wsproto.mask_payload(frame[off + 4 :], key) == payload


@pytest.fixture(params=["plain", "counting"])
def parser_kind(request: pytest.FixtureRequest) -> str:
    """Every parser test runs on the plain parser and on the counting one (whose
    marker-less frames take the same general path)."""
    return str(request.param)


Collected = tuple[wsproto.FrameParser, list[tuple[int, bytes]], list[tuple[int, bytes]]]


def _collect(kind: str = "plain") -> Collected:
    data: list[tuple[int, bytes]] = []
    control: list[tuple[int, bytes]] = []

    def on_data(buf: bytes | bytearray, s: int, e: int, op: int) -> None:
        data.append((op, bytes(buf[s:e])))

    def on_control(op: int, payload: bytes) -> None:
        control.append((op, payload))

    if kind == "plain":
        return wsproto.FrameParser(on_data, on_control), data, control
    parser = CountingParser(on_data, on_control, Counters())
    parser.trackers = {0: SeqTracker()}
    return parser, data, control


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 100_000])
def test_parser_handles_any_split_of_the_stream(chunk: int, parser_kind: str) -> None:
    msgs = [b"a", b"x" * 200, b"y" * 70_000, b""]
    stream = b"".join(wsproto.encode_frame(wsproto.OP_TEXT, m, mask=False) for m in msgs)
    stream += wsproto.encode_frame(wsproto.OP_PING, b"hi", mask=False)
    parser, data, control = _collect(parser_kind)
    for i in range(0, len(stream), chunk):
        parser.feed(stream[i : i + chunk])
    assert [m for _, m in data] == msgs
    assert control == [(wsproto.OP_PING, b"hi")]
    assert parser.frames == 5


def test_parser_reassembles_fragments_around_a_control_frame(parser_kind: str) -> None:
    parser, data, control = _collect(parser_kind)
    parser.feed(wsproto.encode_frame(wsproto.OP_TEXT, b"hel", mask=False, fin=False))
    parser.feed(wsproto.encode_frame(wsproto.OP_PONG, b"", mask=False))
    parser.feed(wsproto.encode_frame(wsproto.OP_CONT, b"lo", mask=False, fin=True))
    assert data == [(wsproto.OP_TEXT, b"hello")]
    assert control == [(wsproto.OP_PONG, b"")]


@pytest.mark.parametrize(
    "frame",
    [
        wsproto.encode_frame(wsproto.OP_TEXT, b"masked", mask=True),  # server must not mask
        wsproto.encode_frame(wsproto.OP_CONT, b"x", mask=False),  # continuation of nothing
        bytes([0x83, 0]),  # reserved opcode
    ],
)
def test_parser_rejects_protocol_errors(frame: bytes, parser_kind: str) -> None:
    parser, _, _ = _collect(parser_kind)
    with pytest.raises(wsproto.ProtocolError):
        parser.feed(frame)


def test_marker_and_socketio_packets() -> None:
    text = marker_text(3, 1234, 1732269600123456789)
    assert len(text) <= 150
    assert parse_marker(text) == (3, 1234, 1732269600123456789)
    assert parse_marker("hello") is None
    assert parse_sio(b'0{"sid":"x","pingInterval":25000}').data["sid"] == "x"
    pkt = parse_sio(b'431[{"ok":true}]')
    assert (pkt.eio, pkt.sio, pkt.ack_id, pkt.data) == ("4", "3", 1, [{"ok": True}])
    pkt = parse_sio(sio_event("post", {"text": "t"}, 7))
    assert (pkt.sio, pkt.ack_id, pkt.data) == ("2", 7, ["post", {"text": "t"}])
    assert parse_sio(b"2").eio == "2"


# --- real sockets against a tiny aiohttp websocket server ------------------------------


@contextlib.asynccontextmanager
async def tiny_server(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port: int = runner.addresses[0][1]
    try:
        yield port
    finally:
        await runner.cleanup()


def _event(poster: int, seq: int) -> dict[str, object]:
    text = marker_text(poster, seq, 1)
    return {
        "op": "event",
        "topic": f"user:p{poster}",
        "cursor": str(1000 + seq),
        "type": "post.created",
        "data": {"text": text, "segments": [{"text": text}]},
    }


@pytest.mark.parametrize("codec_name", ["json", "msgpack"])
async def test_echohub_dialect_request_reply_and_counting(codec_name: str) -> None:
    codec = CODECS[codec_name]
    seen_auth: list[str] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        seen_auth.append(request.headers.get("Authorization", ""))
        ws = web.WebSocketResponse(protocols=["echohub.v1.json", "echohub.v1.msgpack"])
        await ws.prepare(request)
        async for msg in ws:
            raw = msg.data if msg.type == WSMsgType.BINARY else msg.data.encode()
            req = codec.decode(raw)
            if req["op"] == "sub":
                reply = {"op": "ack", "id": req["id"], "topic": req["topic"], "cursor": "999"}
                events = [_event(0, s) for s in (0, 1, 1, 3)]  # 1 duplicated, 2 lost
            else:
                reply = {"op": "error", "id": req["id"], "code": "bad_op", "message": "no"}
                events = []
            for obj in [reply, *events]:
                data = codec.encode(obj)
                if codec_name == "json":
                    await ws.send_str(data.decode())
                else:
                    await ws.send_bytes(data)
        return ws

    async with tiny_server(handler) as port:
        counters = Counters(sample_every=1)
        sock = await connect_echohub("127.0.0.1", port, codec, counters, token="tok")
        assert sock.subprotocol == codec.subprotocol
        sock.trackers = {0: SeqTracker()}
        sock.track_cursor = True
        ack = await sock.subscribe("user:p0")
        assert ack["cursor"] == "999"
        for _ in range(200):
            if counters.delivered == 4:
                break
            await asyncio.sleep(0.01)
        assert counters.delivered == 4
        assert sock.trackers[0].state() == (2, [3], 1)
        assert sock.cursors["user:p0"] == "1003"
        assert counters.hist.count == 4  # sample_every=1 samples every event
        with pytest.raises(Exception, match="bad_op"):
            await sock.request({"op": "nope"}, within=5)
        await sock.close()
        assert sock.closed.done()
    assert seen_auth == ["Bearer tok"]


async def test_server_ping_is_answered_and_close_code_is_reported() -> None:
    got_pong = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await ws.ping(b"beat")
        msg = await ws.receive()
        if msg.type == WSMsgType.PONG and msg.data == b"beat":
            got_pong.set()
        await ws.close(code=4008, message=b"too slow")
        return ws

    async with tiny_server(handler) as port:
        sock = await connect_echohub("127.0.0.1", port, CODECS["json"], Counters(), token=None)
        await asyncio.wait_for(got_pong.wait(), 5)
        code, reason = await asyncio.wait_for(sock.closed, 5)
        assert (code, reason) == (4008, "too slow")


async def test_refused_upgrade_raises_with_status() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": {"code": "unauthorized"}}, status=401)

    async with tiny_server(handler) as port:
        with pytest.raises(wsproto.HandshakeRefused) as refused:
            await connect_echohub("127.0.0.1", port, CODECS["json"], Counters(), token="bad")
        assert refused.value.status == 401


async def test_bulk_frames_in_large_reads_are_all_counted() -> None:
    n = 5000

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=["echohub.v1.json"])
        await ws.prepare(request)
        await ws.receive()
        for seq in range(n):
            await ws.send_bytes(orjson.dumps(_event(seq % 2, seq // 2)))
        await ws.receive()
        return ws

    async with tiny_server(handler) as port:
        counters = Counters(sample_every=100)
        sock = await open_socket(
            lambda: EchoHubSocket(f"127.0.0.1:{port}", CODECS["json"], counters),
            "127.0.0.1",
            port,
        )
        assert isinstance(sock, EchoHubSocket) and isinstance(sock, LeanWebSocket)
        sock.trackers = {0: SeqTracker(), 1: SeqTracker()}
        sock.send(b"go")
        for _ in range(500):
            if counters.delivered == n:
                break
            await asyncio.sleep(0.01)
        assert counters.delivered == n
        assert [t.state() for t in sock.trackers.values()] == [(n // 2, [], 0)] * 2
        assert counters.hist.count == n // 100
        await sock.close()
