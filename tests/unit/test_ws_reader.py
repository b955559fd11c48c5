"""The sans-I/O client reader and the handshake, with bytes only: no socket, no loop.

Client frames are encoded by the load tester's independent client side (`wsproto`).
"""

from __future__ import annotations

import itertools

import msgpack
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtest import wsproto
from server.protocol import (
    OP_BINARY,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    ClientReader,
    Close,
    FrameError,
    HandshakeError,
    Incoming,
    Message,
    Ping,
    PingRequest,
    Pong,
    PostRequest,
    ProtocolError,
    SubRequest,
    UnsubRequest,
    handshake_answer,
    read_request,
)

enc = wsproto.encode_frame


def read_all(reader: ClientReader, *chunks: bytes) -> list[Incoming]:
    events: list[Incoming] = []
    for chunk in chunks:
        events += reader.receive_data(chunk)
    return events


def refusal(reader: ClientReader, data: bytes) -> int:
    with pytest.raises(FrameError) as info:
        reader.receive_data(data)
    return info.value.code


def test_text_is_str_and_binary_is_bytes() -> None:
    reader = ClientReader(1000)
    events = read_all(reader, enc(OP_TEXT, "héllo".encode()) + enc(OP_BINARY, b"\x00\xff"))
    assert events == [Message("héllo"), Message(b"\x00\xff")]


def test_control_frames_between_fragments_come_out_first() -> None:
    reader = ClientReader(1000)
    stream = (
        enc(OP_TEXT, b"ab", fin=False)
        + enc(OP_PING, b"p")
        + enc(OP_CONTINUATION, b"cd", fin=False)
        + enc(OP_PONG, b"q")
        + enc(OP_CONTINUATION, b"ef")
    )
    assert read_all(reader, stream) == [Ping(b"p"), Pong(b"q"), Message("abcdef")]


_stream_parts = st.lists(
    st.one_of(
        st.tuples(st.just("text"), st.text(max_size=40), st.integers(1, 4)),
        st.tuples(st.just("binary"), st.binary(max_size=60), st.integers(1, 4)),
        st.tuples(st.just("ping"), st.binary(max_size=125), st.just(1)),
    ),
    max_size=6,
)


def _encode(parts: list[tuple[str, object, int]]) -> tuple[bytes, list[Incoming]]:
    stream = b""
    expected: list[Incoming] = []
    for kind, value, pieces in parts:
        if kind == "ping":
            assert isinstance(value, bytes)
            stream += enc(OP_PING, value)
            expected.append(Ping(value))
            continue
        data = value.encode() if isinstance(value, str) else value
        assert isinstance(data, bytes)
        step = max(1, len(data) // pieces + 1)
        cuts = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
        for i, cut in enumerate(cuts):
            opcode = (OP_TEXT if kind == "text" else OP_BINARY) if i == 0 else OP_CONTINUATION
            stream += enc(opcode, cut, fin=i == len(cuts) - 1)
        expected.append(Message(value))  # type: ignore[arg-type]
    return stream, expected


@given(parts=_stream_parts, cuts=st.lists(st.integers(min_value=0), max_size=5))
def test_the_same_messages_however_the_bytes_are_split(
    parts: list[tuple[str, object, int]], cuts: list[int]
) -> None:
    """Text fragments cut inside a UTF-8 sequence and bytes split anywhere are fine."""
    stream, expected = _encode(parts)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    assert read_all(ClientReader(1000), *chunks) == expected


def test_an_unmasked_frame_is_1002_from_its_header() -> None:
    reader = ClientReader(1000)
    frame = enc(OP_TEXT, b'{"op":"ping"}', mask=False)
    assert refusal(reader, frame[:2]) == 1002
    # The reader has ended: nothing more is read from this connection.
    assert reader.ended and reader.receive_data(enc(OP_TEXT, b"x")) == []


def test_unmasked_control_frames_too() -> None:
    assert refusal(ClientReader(1000), enc(OP_PING, b"x", mask=False)) == 1002


def test_invalid_utf8_in_a_first_fragment_fails_at_once() -> None:
    """Not after the (maybe megabytes of) fragments that would follow."""
    reader = ClientReader(1 << 20)
    assert refusal(reader, enc(OP_TEXT, b'{"op":"\xff', fin=False)) == 1007


def test_invalid_utf8_in_a_later_fragment_fails_at_that_fragment() -> None:
    reader = ClientReader(1 << 20)
    assert reader.receive_data(enc(OP_TEXT, b"ok ", fin=False)) == []
    assert refusal(reader, enc(OP_CONTINUATION, b"\xc3\x28", fin=False)) == 1007


def test_a_sequence_cut_at_the_end_of_the_message_is_1007() -> None:
    reader = ClientReader(1000)
    reader.receive_data(enc(OP_TEXT, "é".encode()[:1], fin=False))
    assert refusal(reader, enc(OP_CONTINUATION, b"")) == 1007


def test_binary_fragments_are_not_checked_as_text() -> None:
    reader = ClientReader(1000)
    stream = enc(OP_BINARY, b"\xff", fin=False) + enc(OP_CONTINUATION, b"\xfe")
    assert read_all(reader, stream) == [Message(b"\xff\xfe")]


def test_a_frame_over_the_limit_is_1009_from_its_header() -> None:
    header = enc(OP_BINARY, b"x" * 2000)[:8]
    assert refusal(ClientReader(1000), header) == 1009


def test_fragments_over_the_limit_are_1009_at_the_fragment_that_crosses_it() -> None:
    reader = ClientReader(1000)
    for _ in range(3):
        assert reader.receive_data(enc(OP_TEXT if _ == 0 else OP_CONTINUATION, b"x" * 300,
                                       fin=False)) == []  # fmt: skip
    assert refusal(reader, enc(OP_CONTINUATION, b"x" * 101, fin=False)) == 1009


@pytest.mark.parametrize(
    "stream",
    [
        enc(OP_CONTINUATION, b"x"),  # continuation of no message
        enc(OP_TEXT, b"a", fin=False) + enc(OP_TEXT, b"b"),  # a message inside another
        bytes((0xC1, 0x80)) + b"\0\0\0\0",  # RSV1 without an extension
        bytes((0x83, 0x80)) + b"\0\0\0\0",  # reserved opcode
        enc(OP_PING, b"x", fin=False),  # fragmented control frame
    ],
)
def test_protocol_violations_are_1002(stream: bytes) -> None:
    assert refusal(ClientReader(1000), stream) == 1002


def test_after_a_close_nothing_more_is_read() -> None:
    reader = ClientReader(1000)
    stream = enc(OP_TEXT, b"a") + wsproto.encode_close(1001) + enc(OP_TEXT, b"b")
    assert read_all(reader, stream) == [Message("a"), Close(1001)]
    assert reader.ended and reader.receive_data(enc(OP_TEXT, b"c")) == []


def test_a_bad_close_frame_is_refused() -> None:
    assert refusal(ClientReader(1000), enc(0x8, b"\x03\xe8\xff")) == 1007
    assert refusal(ClientReader(1000), enc(0x8, b"\x03")) == 1002


# --- the frame's type decides how a message is read (README: the codec rule) ----------


def test_a_binary_frame_is_msgpack_and_a_text_frame_json_on_any_socket() -> None:
    frame = {"op": "sub", "id": 1, "topic": "home", "since": "7"}
    assert read_request(msgpack.packb(frame)) == SubRequest(1, "home", 7)
    assert read_request(orjson.dumps(frame).decode()) == SubRequest(1, "home", 7)
    with pytest.raises(ProtocolError) as info:
        read_request(orjson.dumps(frame))  # JSON in a binary frame is not msgpack
    assert info.value.code == "bad_frame" and "msgpack" in info.value.message


def test_each_op_has_its_request_type() -> None:
    assert read_request('{"op":"ping","id":"a"}') == PingRequest("a")
    assert read_request('{"op":"unsub","id":2,"topic":"t"}') == UnsubRequest(2, "t")
    post = {"op": "post", "id": 3, "text": "hi"}
    assert read_request(orjson.dumps(post).decode()) == PostRequest(3, post)


# --- the handshake ----------------------------------------------------------------------

_GOOD = {
    "Upgrade": "websocket",
    "Connection": "keep-alive, Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


def test_the_rfc_example_handshake() -> None:
    answer, subprotocol = handshake_answer(_GOOD)
    assert answer["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert subprotocol is None and "Sec-WebSocket-Protocol" not in answer


def test_the_first_subprotocol_we_speak_is_chosen() -> None:
    headers = {**_GOOD, "Sec-WebSocket-Protocol": "chat, echohub.v1.msgpack, echohub.v1.json"}
    answer, subprotocol = handshake_answer(headers)
    assert subprotocol == "echohub.v1.msgpack" == answer["Sec-WebSocket-Protocol"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"Upgrade": "h2c"}, "No WebSocket UPGRADE hdr"),
        ({"Connection": "keep-alive"}, "No CONNECTION upgrade hdr"),
        ({"Sec-WebSocket-Version": "12"}, "Unsupported version"),
        ({"Sec-WebSocket-Key": "c2hvcnQ="}, "Handshake error"),
        ({"Sec-WebSocket-Key": "not base64!"}, "Handshake error"),
        ({"Sec-WebSocket-Key": ""}, "Handshake error"),
    ],
)
def test_handshake_refusals(change: dict[str, str], words: str) -> None:
    with pytest.raises(HandshakeError) as info:
        handshake_answer({**_GOOD, **change})
    assert words in str(info.value)
