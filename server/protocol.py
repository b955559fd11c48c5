"""The websocket wire protocol: envelope, codecs, subprotocols, close codes, frames.

Pure: no sockets, no event loop. The hub asks it for the bytes of a frame; the socket
handler asks it to read a client's frame into a `Request` or a `ProtocolError`.

Server frames are built here byte for byte (RFC 6455, unmasked) so that one event is
encoded once per codec and the very same bytes are written to every recipient.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import msgpack
import orjson

JSON_SUBPROTOCOL = "echohub.v1.json"
MSGPACK_SUBPROTOCOL = "echohub.v1.msgpack"
SUBPROTOCOLS = (JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL)


class CloseCode(IntEnum):
    GOING_AWAY = 1001
    TOO_BIG = 1009
    SESSION_ENDED = 4001
    SUSPENDED = 4003
    TOO_SLOW = 4008
    RATE_LIMITED = 4029
    PROTOCOL_ABUSE = 4400


class ProtocolError(Exception):
    """A client frame the server refuses; answered with an `error` frame, socket kept."""

    def __init__(self, code: str, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Codec:
    name: str
    binary: bool
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes | str], Any]


def _msgpack_decode(data: bytes | str) -> Any:
    if isinstance(data, str):
        raise ValueError("msgpack frames must be binary")
    return msgpack.unpackb(data, raw=False, strict_map_key=True)


def _json_decode(data: bytes | str) -> Any:
    return orjson.loads(data)


JSON = Codec(JSON_SUBPROTOCOL, False, orjson.dumps, _json_decode)
MSGPACK = Codec(MSGPACK_SUBPROTOCOL, True, msgpack.packb, _msgpack_decode)
CODECS = {JSON.name: JSON, MSGPACK.name: MSGPACK}


def codec_for(subprotocol: str | None) -> Codec:
    """The negotiated codec; JSON when the client asked for none we speak."""
    return CODECS.get(subprotocol or "", JSON)


def frame_header(length: int, binary: bool) -> bytes:
    first = 0x82 if binary else 0x81  # FIN + opcode
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def ws_frame(payload: bytes, binary: bool) -> bytes:
    """A complete unmasked server data frame carrying `payload`."""
    return frame_header(len(payload), binary) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    payload = struct.pack("!H", code) + reason.encode()[:120]
    return bytes((0x88, len(payload))) + payload


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    """An unmasked control frame (ping 0x9, pong 0xA); `payload` at most 125 bytes."""
    return bytes((0x80 | opcode, len(payload))) + payload


# --- client frames (RFC 6455 section 5) -------------------------------------------------

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_OPCODES = frozenset((OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG))
PROTOCOL_ERROR, INVALID_TEXT = 1002, 1007
# Close codes a peer may send (RFC 6455 section 7.4; 1004-1006 and 1015 never on the wire).
_PEER_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                               1013, 1014))  # fmt: skip


class FrameError(Exception):
    """A client frame that breaks RFC 6455: the socket is closed with `code`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if not n:
        return payload
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(payload, "little") ^ key).to_bytes(n, "little")


def read_frames(
    data: bytes | bytearray, max_size: int
) -> tuple[list[tuple[bool, int, bytes]], int]:
    """The complete frames at the start of `data` as (fin, opcode, unmasked payload),
    and how many bytes they took (an incomplete frame may follow). Raises FrameError.

    A data frame longer than `max_size` is refused from its header (1009) without
    waiting for its payload. Unmasked client frames are accepted, as aiohttp does.
    """
    frames: list[tuple[bool, int, bytes]] = []
    pos, end = 0, len(data)
    while end - pos >= 2:
        first, second = data[pos], data[pos + 1]
        if first & 0x70:
            raise FrameError(PROTOCOL_ERROR, "reserved bits set (no extension was agreed)")
        opcode = first & 0x0F
        if opcode not in _OPCODES:
            raise FrameError(PROTOCOL_ERROR, f"unknown opcode {opcode}")
        fin = bool(first & 0x80)
        length = second & 0x7F
        head = pos + 2
        if length == 126:
            if end - pos < 4:
                break
            length = int.from_bytes(data[head : head + 2], "big")
            head += 2
        elif length == 127:
            if end - pos < 10:
                break
            length = int.from_bytes(data[head : head + 8], "big")
            head += 8
        if opcode >= OP_CLOSE:
            if not fin or length > 125:
                raise FrameError(PROTOCOL_ERROR, "control frames are short and unfragmented")
        elif length > max_size:
            raise FrameError(CloseCode.TOO_BIG, f"frame of {length} bytes exceeds {max_size}")
        masked = second & 0x80
        start = head + 4 if masked else head
        stop = start + length
        if stop > end:
            break
        payload = bytes(data[start:stop])
        if masked:
            payload = unmask(payload, bytes(data[head:start]))
        frames.append((fin, opcode, payload))
        pos = stop
    return frames, pos


def read_close(payload: bytes) -> int:
    """The code of a peer's close frame (1005: none given). Raises FrameError."""
    if not payload:
        return 1005
    if len(payload) == 1:
        raise FrameError(PROTOCOL_ERROR, "a close frame's code takes two bytes")
    code = int.from_bytes(payload[:2], "big")
    if code not in _PEER_CLOSE_CODES and not 3000 <= code <= 4999:
        raise FrameError(PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        raise FrameError(INVALID_TEXT, "close reason is not UTF-8") from None
    return code


def encode_frame(codec: Codec, message: dict[str, Any]) -> bytes:
    return ws_frame(codec.encode(message), codec.binary)


def event_message(topic: str, cursor: int, type_: str, data: Any) -> dict[str, Any]:
    return {"op": "event", "topic": topic, "cursor": str(cursor), "type": type_, "data": data}


def error_message(request_id: Any, code: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"op": "error", "id": request_id, "code": code, "message": message}
    body.update(extra)
    return body


# --- client requests -------------------------------------------------------------------

OPS = ("sub", "unsub", "post", "ping")
MAX_TOPIC_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Request:
    op: str
    id: Any
    topic: str | None = None
    since: int | None = None
    body: dict[str, Any] | None = None  # the whole frame, for ops with a payload (post)
    filter: dict[str, Any] | None = None


def parse_cursor(raw: Any) -> int:
    """Cursors are decimal strings of a non-negative integer."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValueError("cursor must be a string")
    text = str(raw)
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        raise ValueError("cursor must be a decimal string")
    return int(text)


def read_request(codec: Codec, data: bytes | str) -> Request:
    """Decode and validate one client frame. Raises ProtocolError, never anything else."""
    try:
        if isinstance(data, str):
            obj = orjson.loads(data)
        elif codec.binary:
            obj = _msgpack_decode(data)
        else:
            obj = orjson.loads(data)
    except Exception:
        kind = "JSON" if isinstance(data, str) or not codec.binary else "msgpack"
        raise ProtocolError("bad_frame", f"frame is not valid {kind}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_frame", "frame must be an object with an 'op'")
    request_id = obj.get("id")
    if request_id is not None and (
        isinstance(request_id, bool) or not isinstance(request_id, int | str)
    ):
        raise ProtocolError("bad_frame", "'id' must be a number or a string")
    if isinstance(request_id, str) and len(request_id) > 64:
        raise ProtocolError("bad_frame", "'id' is too long")
    op = obj.get("op")
    if not isinstance(op, str):
        raise ProtocolError("bad_frame", "frame must have a string 'op'", request_id)
    if op not in OPS:
        raise ProtocolError("unknown_op", f"unknown op {op[:32]!r}", request_id)
    if op == "ping":
        return Request("ping", request_id)
    if op == "post":
        return Request("post", request_id, body=obj)
    topic = obj.get("topic")
    if not isinstance(topic, str) or not topic or len(topic) > MAX_TOPIC_LENGTH:
        raise ProtocolError("bad_topic", "'topic' must be a non-empty string", request_id)
    if op == "unsub":
        return Request("unsub", request_id, topic)
    since = None
    if obj.get("since") is not None:
        try:
            since = parse_cursor(obj["since"])
        except ValueError as exc:
            raise ProtocolError("bad_cursor", str(exc), request_id) from None
    flt = obj.get("filter")
    if flt is not None and not isinstance(flt, dict):
        raise ProtocolError("bad_filter", "'filter' must be an object", request_id)
    return Request("sub", request_id, topic, since, filter=flt)
