"""The wire protocol without an event loop: codecs, frames, request parsing."""

from __future__ import annotations

import struct

import msgpack
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.protocol import (
    JSON,
    MSGPACK,
    CloseCode,
    ProtocolError,
    close_frame,
    codec_for,
    encode_frame,
    event_message,
    parse_cursor,
    read_request,
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
    request = read_request(codec, raw)  # type: ignore[arg-type]
    assert (request.op, request.id, request.topic, request.since) == ("sub", 1, "home", 42)


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
        read_request(JSON, raw)
    assert info.value.code == code


def test_error_keeps_the_request_id_when_it_is_readable() -> None:
    with pytest.raises(ProtocolError) as info:
        read_request(JSON, '{"op": "dance", "id": 9}')
    assert info.value.request_id == 9


@pytest.mark.parametrize("raw", [b"\xc1", b"\x93\x01", b"\x81\xa2op\xa3sub\xff"])
def test_bad_msgpack(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        read_request(MSGPACK, raw)
    assert info.value.code == "bad_frame"


@given(st.binary(max_size=64))
def test_read_request_never_raises_anything_else(raw: bytes) -> None:
    for codec in (JSON, MSGPACK):
        try:
            read_request(codec, raw)
        except ProtocolError:
            pass


@pytest.mark.parametrize(("raw", "value"), [("0", 0), ("123", 123), (17, 17)])
def test_cursor_parse(raw: object, value: int) -> None:
    assert parse_cursor(raw) == value


@pytest.mark.parametrize("raw", ["", "1.5", "１２", "9" * 21, None, 1.0, False])
def test_cursor_rejects(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_cursor(raw)
