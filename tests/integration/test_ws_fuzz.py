"""Websocket fuzzing against a real server process: raw frames, and op payloads in both
codecs. Whatever a client sends, the server does not crash, no connection is left stuck
(each either answers a ping or is closed, and every one is released once the client
goes), and the server's memory stays bounded.

The CI budget is a few hundred examples; `scripts/wsfuzz.py` runs the same tests for
100,000 frames or more (ECHOHUB_FUZZ_FRAMES).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgpack
import orjson
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadtest import wsproto
from tests.support import Server, signup, start_server, stop_server

# Frames the long run sends in all (scripts/wsfuzz.py); the CI run sends about 800.
FRAMES = int(os.environ.get("ECHOHUB_FUZZ_FRAMES", "0"))
# Frames per raw example: longer streams in the long run.
MIN_FRAMES, MAX_FRAMES = (24, 64) if FRAMES else (1, 16)
FRAME_EXAMPLES = max(100, FRAMES * 9 // 10 // 30)
OP_EXAMPLES = max(60, FRAMES // 10 // 4)
# Growth of the server's RSS over the run beyond which memory is not bounded.
RSS_GROWTH_LIMIT = 48 * 1024 * 1024
TIMEOUT = 10.0
REPLIES = {"ack", "error", "event", "pong"}


@dataclass
class Target:
    server: Server
    token: str
    sent_frames: int = 0
    examples: int = 0


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        match = re.search(r"VmRSS:\s+(\d+) kB", status.read())
    assert match
    return int(match.group(1)) * 1024


def open_connections(server: Server) -> int:
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        text = b""
        while chunk := sock.recv(65536):
            text += chunk
    match = re.search(rb"^echohub_connections (\d+)", text, re.M)
    assert match, text[:300]
    return int(match.group(1))


@pytest.fixture(scope="module")
def target(engine_url: str) -> Iterator[Target]:
    server = start_server("--redis-url", engine_url)

    async def member() -> str:
        rdb = aioredis.Redis.from_url(engine_url, decode_responses=True)
        try:
            return (await signup(server, rdb, f"fuzz{random.randrange(10**6)}")).token
        finally:
            await server.close()
            await rdb.aclose()

    target = Target(server, asyncio.run(member()))
    baseline = open_connections(server)
    # Warm up (imports, caches, allocator arenas) before taking the memory baseline.
    for _ in range(20):
        with connect(target, None) as sock:
            sock.sendall(wsproto.encode_frame(wsproto.OP_TEXT, b'{"op":"ping","id":0}'))
            assert read_until_reply(sock, lambda f: f.get("op") == "pong", False) == "replied"
    start_rss = rss_of(server.proc.pid)
    yield target
    try:
        assert server.proc.poll() is None, "the server died"
        # No stuck connection: every fuzzed socket is released once its client went.
        deadline = time.monotonic() + TIMEOUT
        while open_connections(server) > baseline:
            assert time.monotonic() < deadline, "connections left open on the server"
            time.sleep(0.05)  # polling a condition, bounded by the deadline
        growth = rss_of(server.proc.pid) - start_rss
        print(f"fuzz: {target.examples} connections, {target.sent_frames} frames, "
              f"server RSS {growth / 1e6:+.1f} MB")  # fmt: skip
        assert growth < RSS_GROWTH_LIMIT, growth
        assert target.sent_frames >= FRAMES, "the long run sent fewer frames than asked"
    finally:
        stop_server(server)
        assert "Traceback" not in "".join(server.log), server.log[-1][-3000:]


class connect:
    """A websocket by hand on a blocking socket, after the 101."""

    def __init__(self, target: Target, subprotocol: str | None) -> None:
        self.target, self.subprotocol = target, subprotocol

    def __enter__(self) -> socket.socket:
        port = self.target.server.port
        sock = self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        key = wsproto.new_key()
        sock.sendall(wsproto.handshake_request(
            f"127.0.0.1:{port}", "/ws", key,
            subprotocols=[self.subprotocol] if self.subprotocol else [],
            headers=[("Authorization", f"Bearer {self.target.token}")],
        ))  # fmt: skip
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            assert chunk, "no answer to the upgrade"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        self.target.examples += 1
        return sock

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def read_frame(sock: socket.socket) -> tuple[int, bytes] | None:
    """One server frame (None at EOF); server frames are never masked nor cut."""

    def exactly(n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    head = exactly(2)
    if head is None:
        return None
    assert not head[1] & 0x80 and not head[0] & 0x70, head
    length = head[1] & 0x7F
    if length >= 126:
        ext = exactly(2 if length == 126 else 8)
        assert ext is not None, "a frame header was cut"
        length = int.from_bytes(ext, "big")
    payload = exactly(length)
    assert payload is not None, "a frame was cut"
    return head[0] & 0x0F, payload


def read_until_reply(sock: socket.socket, done: Any, binary: bool) -> str:
    """Read until `done(frame)`: "replied"; or the server's close: "closed" (then EOF).
    Every data frame must be one of the replies, in the socket's codec and shape."""
    while True:
        frame = read_frame(sock)
        if frame is None:
            return "closed"  # aborted: a close frame was already seen or never due
        opcode, payload = frame
        if opcode == wsproto.OP_CLOSE:
            code = struct.unpack("!H", payload[:2])[0] if payload else 1005
            assert code in (1000, 1002, 1007, 1009, 4008, 4029, 4400), code
            sock.sendall(wsproto.encode_close(code if code < 4000 else 1000))
            while read_frame(sock) is not None:
                pass
            return "closed"
        if opcode in (wsproto.OP_PONG, wsproto.OP_PING):
            if done((opcode, payload)):
                return "replied"
            continue
        assert opcode == (wsproto.OP_BINARY if binary else wsproto.OP_TEXT), opcode
        reply = msgpack.unpackb(payload) if binary else orjson.loads(payload)
        assert isinstance(reply, dict) and reply.get("op") in REPLIES, reply
        if reply["op"] == "error":
            assert isinstance(reply["code"], str) and isinstance(reply["message"], str)
        if done(reply):
            return "replied"


# --- raw frames -------------------------------------------------------------------------

_payloads = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=80).map(str.encode),
    st.sampled_from(
        [
            b'{"op":"ping","id":1}',
            b'{"op":"sub","id":2,"topic":"public"}',
            b"\xff\xfe",
            b"\xe2\x82",
            b"",
            b"{",
            b"\x00" * 130,
        ]
    ),  # fmt: skip
)


@st.composite
def raw_frame(draw: st.DrawFn) -> bytes:
    opcode = draw(st.sampled_from([0, 1, 1, 2, 2, 8, 9, 9, 10]) | st.integers(0, 15))
    payload = draw(_payloads)
    if opcode == 8 and draw(st.booleans()):
        payload = struct.pack("!H", draw(st.integers(0, 5000))) + payload[:60]
    fin = draw(st.booleans() | st.just(True))
    rsv = draw(st.sampled_from([0, 0, 0, 0, 0x10, 0x20, 0x40]))
    masked = draw(st.sampled_from([True] * 12 + [False]))
    frame = bytearray(wsproto.encode_frame(opcode, payload, mask=masked, fin=fin))
    frame[0] |= rsv
    return bytes(frame)


@st.composite
def frame_streams(draw: st.DrawFn) -> tuple[list[bytes], int, bool]:
    """(the pieces sent, how many frames, whether the stream ends on a frame boundary)."""
    frames = draw(st.lists(raw_frame(), min_size=MIN_FRAMES, max_size=MAX_FRAMES))
    stream = b"".join(frames)
    whole = True
    tail = draw(st.sampled_from(["none"] * 6 + ["cut", "lie", "junk"]))
    if tail == "cut":  # the last frame never completes
        stream = stream[: draw(st.integers(1, len(stream)))]
        whole = False
    elif tail == "lie":  # a header announcing more than follows (up to 64 KiB)
        stream += bytes((0x82, 0xFE)) + struct.pack("!H", draw(st.integers(126, 65535)))
        stream += b"\0\0\0\0" + b"x" * draw(st.integers(0, 100))
        whole = False
    elif tail == "junk":
        stream += draw(st.binary(min_size=1, max_size=64))
        whole = False
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    return [p for p in pieces if p], len(frames), whole


@settings(max_examples=FRAME_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(stream=frame_streams(), subprotocol=st.sampled_from([None, "echohub.v1.msgpack"]))
def test_raw_frames(target: Target, stream: tuple[list[bytes], int, bool],
                    subprotocol: str | None) -> None:  # fmt: skip
    pieces, count, whole = stream
    with connect(target, subprotocol) as sock:
        try:
            for piece in pieces:
                sock.sendall(piece)
            target.sent_frames += count
            if whole:
                # A ping after it all: answered (the connection is not stuck) unless
                # the server closed the socket for what came before.
                token = os.urandom(8)
                sock.sendall(wsproto.encode_frame(wsproto.OP_PING, token))
                binary = subprotocol is not None
                done = lambda f: f == (wsproto.OP_PONG, token)  # noqa: E731
                assert read_until_reply(sock, done, binary) in ("replied", "closed")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed first: allowed, its release is checked at the end


# --- op payloads in both codecs -----------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=30)
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                       max_leaves=8)  # fmt: skip
_ops = st.fixed_dictionaries(
    {"op": st.sampled_from(["sub", "unsub", "post", "ping"]) | st.text(max_size=10)},
    optional={
        "id": st.integers(-5, 10**6) | st.text(max_size=70) | _values,
        "topic": st.sampled_from(["public", "home", "me", "user:nobody", "event:x"])
        | st.text(max_size=210),
        "since": st.sampled_from(["0", "1", "99999999999999999999"]) | _values,
        "filter": _values,
        "text": st.text(max_size=300),
        "visibility": st.sampled_from(["public", "friends", "x"]) | _values,
        "extra": _values,
    },
)


@settings(max_examples=OP_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(ops=st.lists(_ops | _values, min_size=1, max_size=6),
       codec=st.sampled_from(["json", "msgpack"]), as_text=st.booleans())  # fmt: skip
def test_op_payloads(target: Target, ops: list[Any], codec: str, as_text: bool) -> None:
    binary = codec == "msgpack"
    with connect(target, f"echohub.v1.{codec}") as sock:
        for op in ops:
            if binary or not as_text:  # a binary frame is msgpack on either socket
                data = msgpack.packb(op, use_bin_type=True)
                frame = wsproto.encode_frame(wsproto.OP_BINARY, data)
            else:
                try:
                    data = orjson.dumps(op)
                except TypeError:  # NaN and big ints have no JSON: skip that one
                    continue
                frame = wsproto.encode_frame(wsproto.OP_TEXT, data)
            sock.sendall(frame)
        target.sent_frames += len(ops) + 1
        ping = {"op": "ping", "id": "end-of-example"}
        data = msgpack.packb(ping) if binary else orjson.dumps(ping)
        sock.sendall(wsproto.encode_frame(wsproto.OP_BINARY if binary else wsproto.OP_TEXT,
                                          data))  # fmt: skip
        done = lambda f: isinstance(f, dict) and f == {"op": "pong", "id": "end-of-example"}  # noqa: E731
        assert read_until_reply(sock, done, binary) in ("replied", "closed")
