"""The wire protocol without an event loop: codecs, frames, request parsing."""

from __future__ import annotations

import struct

import msgpack
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtest import wsproto
from server.protocol import (
    JSON,
    MSGPACK,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_TEXT,
    CloseCode,
    FrameError,
    ProtocolError,
    SubRequest,
    close_frame,
    codec_for,
    encode_frame,
    event_message,
    parse_cursor,
    read_close,
    read_frames,
    read_request,
    unmask,
    ws_frame,
)


def parse_server_frame(frame: bytes) -> tuple[int, bytes]:
    """Minimal RFC 6455 reader for unmasked server frames: (opcode, payload)."""
    first, second = frame[0], frame[1]
    assert first & 0x80, "FIN must be set"
    assert not second & 0x80, "server frames are unmasked"
    length, offset = second & 0x7F, 2
    if length == 126:
        (length,) = struct.unpack("!H", frame[2:4])
        offset = 4
    elif length == 127:
        (length,) = struct.unpack("!Q", frame[2:10])
        offset = 10
    payload = frame[offset:]
    assert len(payload) == length
    return first & 0x0F, payload


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
@pytest.mark.parametrize("binary", [False, True])
def test_frame_lengths(size: int, binary: bool) -> None:
    payload = b"x" * size
    opcode, got = parse_server_frame(ws_frame(payload, binary))
    assert opcode == (2 if binary else 1)
    assert got == payload


def test_close_frame_carries_code() -> None:
    frame = close_frame(CloseCode.TOO_SLOW, "too slow")
    assert frame[0] == 0x88
    assert struct.unpack("!H", frame[2:4])[0] == 4008
    assert frame[4:] == b"too slow"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),  # fmt: skip
    max_leaves=12,
)


@given(json_values, st.sampled_from([JSON, MSGPACK]))
def test_codecs_round_trip_events(data: object, codec: object) -> None:
    message = event_message("home", 1732269600123456, "post.created", data)
    opcode, payload = parse_server_frame(encode_frame(codec, message))  # type: ignore[arg-type]
    assert opcode == (2 if codec is MSGPACK else 1)
    decoded = msgpack.unpackb(payload) if codec is MSGPACK else orjson.loads(payload)
    assert decoded == message


def test_codec_negotiation_defaults_to_json() -> None:
    assert codec_for("echohub.v1.msgpack") is MSGPACK
    assert codec_for("echohub.v1.json") is JSON
    assert codec_for(None) is JSON
    assert codec_for("chat") is JSON


@pytest.mark.parametrize("codec", [JSON, MSGPACK])
def test_requests_parse_in_both_codecs(codec: object) -> None:
    frame = {"op": "sub", "id": 1, "topic": "home", "since": "42"}
    raw = msgpack.packb(frame) if codec is MSGPACK else orjson.dumps(frame).decode()
    assert read_request(raw) == SubRequest(1, "home", 42)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "bad_frame"),
        ("[1, 2]", "bad_frame"),
        ('"sub"', "bad_frame"),
        ("{}", "bad_frame"),
        ('{"op": 5}', "bad_frame"),
        ('{"op": "dance", "id": 1}', "unknown_op"),
        ('{"op": "sub", "id": 1}', "bad_topic"),
        ('{"op": "sub", "id": 1, "topic": 7}', "bad_topic"),
        ('{"op": "sub", "id": 1, "topic": ""}', "bad_topic"),
        ('{"op": "sub", "id": 1, "topic": "home", "since": "abc"}', "bad_cursor"),
        ('{"op": "sub", "id": 1, "topic": "home", "since": "-1"}', "bad_cursor"),
        ('{"op": "sub", "id": 1, "topic": "home", "since": true}', "bad_cursor"),
        ('{"op": "sub", "id": 1, "topic": "home", "filter": []}', "bad_filter"),
        ('{"op": "ping", "id": [1]}', "bad_frame"),
        ('{"op": "ping", "id": true}', "bad_frame"),
        ('{"op": "unsub", "id": 1}', "bad_topic"),
    ],
)
def test_bad_requests_are_protocol_errors(raw: str, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        read_request(raw)
    assert info.value.code == code


def test_error_keeps_the_request_id_when_it_is_readable() -> None:
    with pytest.raises(ProtocolError) as info:
        read_request('{"op": "dance", "id": 9}')
    assert info.value.request_id == 9


@pytest.mark.parametrize("raw", [b"\xc1", b"\x93\x01", b"\x81\xa2op\xa3sub\xff"])
def test_bad_msgpack(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        read_request(raw)
    assert info.value.code == "bad_frame"


@given(st.binary(max_size=64))
def test_read_request_never_raises_anything_else(raw: bytes) -> None:
    for data in (raw, raw.decode(errors="replace")):
        try:
            read_request(data)
        except ProtocolError:
            pass


@pytest.mark.parametrize(("raw", "value"), [("0", 0), ("123", 123), (17, 17)])
def test_cursor_parse(raw: object, value: int) -> None:
    assert parse_cursor(raw) == value


@pytest.mark.parametrize("raw", ["", "1.5", "１２", "9" * 21, None, 1.0, False])
def test_cursor_rejects(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_cursor(raw)


# --- client frames (encoded by the load tester's independent client side) -------------

_frames = st.lists(
    st.tuples(
        st.booleans(),
        st.sampled_from([OP_CONTINUATION, OP_TEXT, OP_BINARY]),
        st.binary(max_size=300),
    )
    | st.tuples(st.just(True), st.sampled_from([OP_CLOSE, OP_PING]), st.binary(max_size=125)),
    max_size=8,
)


@given(frames=_frames, cut=st.integers(min_value=0))
def test_read_frames_whatever_the_split(frames: list[tuple[bool, int, bytes]], cut: int) -> None:
    stream = b"".join(wsproto.encode_frame(op, p, fin=fin) for fin, op, p in frames)
    cut = cut % (len(stream) + 1)
    first, used = read_frames(stream[:cut], 1000)
    rest = bytearray(stream[used:cut])
    rest += stream[cut:]
    second, used = read_frames(rest, 1000)
    assert first + second == frames
    assert used == len(rest)


@pytest.mark.parametrize("size", [125, 126, 65535, 65536])
def test_read_frames_lengths(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    frame = wsproto.encode_frame(OP_BINARY, payload)
    assert read_frames(frame, 1 << 20) == ([(True, OP_BINARY, payload)], len(frame))
    assert read_frames(frame[:-1], 1 << 20) == ([], 0)


def test_unmask_is_its_own_inverse() -> None:
    assert unmask(unmask(b"hello world", b"abcd"), b"abcd") == b"hello world"
    assert unmask(b"", b"abcd") == b""


def test_oversize_frame_is_refused_from_its_header() -> None:
    header = wsproto.encode_frame(OP_TEXT, b"x" * 17000)[:8]
    with pytest.raises(FrameError) as info:
        read_frames(header, 16 * 1024)
    assert info.value.code == 1009


@pytest.mark.parametrize(
    "frame",
    [
        bytes((0xC1, 0x80)) + b"\0\0\0\0",  # RSV1 without an extension
        bytes((0x83, 0x80)) + b"\0\0\0\0",  # reserved opcode 3
        wsproto.encode_frame(OP_PING, b"x", fin=False),  # fragmented control frame
        bytes((0x89, 0xFE, 0, 126)) + b"\0\0\0\0" + b"x" * 126,  # control frame > 125
    ],
)
def test_protocol_violations_are_1002(frame: bytes) -> None:
    with pytest.raises(FrameError) as info:
        read_frames(frame, 1000)
    assert info.value.code == 1002


def test_read_close() -> None:
    assert read_close(b"") == 1005
    assert read_close(struct.pack("!H", 1000)) == 1000
    assert read_close(struct.pack("!H", 4001) + "bye ✓".encode()) == 4001
    for bad, code in (
        (b"\x03", 1002),
        (struct.pack("!H", 1005), 1002),
        (struct.pack("!H", 999), 1002),
        (struct.pack("!H", 1000) + b"\xff", 1007),
    ):
        with pytest.raises(FrameError) as info:
            read_close(bad)
        assert info.value.code == code
