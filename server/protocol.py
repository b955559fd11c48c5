"""The websocket wire protocol: envelope, codecs, subprotocols, close codes, frames.

Pure: no sockets, no event loop. The hub asks it for the bytes of a frame; the socket
adapter feeds a `ClientReader` the bytes a client sent and gets back its messages,
control frames and close, then turns each message into a `Request` or a
`ProtocolError`; the handshake is checked and answered by `handshake_answer`.

Server frames are built here byte for byte (RFC 6455, unmasked) so that one event is
encoded once per codec and the very same bytes are written to every recipient.

Errors, from the client's bytes up:

    FrameError(code)      the bytes break RFC 6455: close the socket with `code`
                          (1002 protocol, 1007 not UTF-8, 1009 too big)
    ProtocolError(code)   a well-formed message the server refuses: an `error` frame,
                          the socket stays
    HandshakeError        the upgrade request is not a websocket handshake: HTTP 400
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import struct
from collections.abc import Callable, Mapping
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
    waiting for its payload; so is an unmasked frame (1002: RFC 6455 section 5.1 says
    a server MUST close on one), before its payload arrives.
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
        if not second & 0x80:
            raise FrameError(PROTOCOL_ERROR, "client frames must be masked")
        start = head + 4
        stop = start + length
        if stop > end:
            break
        frames.append((fin, opcode, unmask(bytes(data[start:stop]), bytes(data[head:start]))))
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


@dataclass(frozen=True, slots=True)
class Message:
    """A whole client message: `str` from text frames, `bytes` from binary ones."""

    data: bytes | str


@dataclass(frozen=True, slots=True)
class Ping:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """The peer's close frame; `code` 1005 when it gave none."""

    code: int


Incoming = Message | Ping | Pong | Close
_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class ClientReader:
    """The client-to-server half of RFC 6455, sans I/O: fed bytes, it hands back what
    they complete (`Message`, `Ping`, `Pong`, `Close`), in order.

    `receive_data` raises FrameError when the bytes break the protocol: unmasked
    frames and reserved bits or opcodes (1002), a frame or reassembled message over
    `max_size` (1009, from the header, before its payload arrives), text that is not
    UTF-8 (1007: a fragmented text message is checked fragment by fragment, so bad
    bytes in its first fragment fail at once, not after the last), a bad close frame.
    After a `Close` or a FrameError, further bytes are ignored: the connection is
    ending. Control frames may come between the fragments of a message.

    Idle sockets are the common case: the reader holds nothing but a few slots until a
    frame arrives in pieces or a message in fragments.
    """

    __slots__ = ("_decoder", "_fragments", "_opcode", "_pending", "ended", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.ended = False
        # The start of a frame that has not arrived whole (None: nothing pending).
        self._pending: bytearray | None = None
        # The message being reassembled from fragments, its opcode, and for text the
        # incremental UTF-8 check of what arrived so far.
        self._fragments: bytearray | None = None
        self._opcode = 0
        self._decoder: codecs.IncrementalDecoder | None = None

    def receive_data(self, data: bytes) -> list[Incoming]:
        if self.ended:
            return []
        try:
            return self._receive(data)
        except FrameError:
            self.ended = True
            self._pending = self._fragments = self._decoder = None
            raise

    def _receive(self, data: bytes) -> list[Incoming]:
        pending = self._pending
        if pending:
            # A frame was incomplete: gather in a bytearray (linear however the bytes
            # trickle in), and forget it once nothing is pending.
            pending += data
            frames, used = read_frames(pending, self.max_size)
            del pending[:used]
            if not pending:
                self._pending = None
        else:
            frames, used = read_frames(data, self.max_size)
            if used < len(data):
                self._pending = bytearray(data[used:])
        events: list[Incoming] = []
        for fin, opcode, payload in frames:
            if opcode >= OP_CLOSE:
                if opcode == OP_PING:
                    events.append(Ping(payload))
                elif opcode == OP_PONG:
                    events.append(Pong(payload))
                else:
                    events.append(Close(read_close(payload)))
                    self.ended = True
                    self._pending = self._fragments = self._decoder = None
                    return events
                continue
            message = self._data_frame(fin, opcode, payload)
            if message is not None:
                events.append(message)
        return events

    def _data_frame(self, fin: bool, opcode: int, payload: bytes) -> Message | None:
        parts = self._fragments
        if opcode == OP_CONTINUATION:
            if parts is None:
                raise FrameError(PROTOCOL_ERROR, "continuation of no message")
            parts += payload
            if len(parts) > self.max_size:
                raise FrameError(CloseCode.TOO_BIG, "message exceeds the frame limit")
            if self._decoder is not None:
                _check_utf8(self._decoder, payload, fin)
            if not fin:
                return None
            opcode = self._opcode
            payload = bytes(parts)
            self._fragments = self._decoder = None
        elif parts is not None:
            raise FrameError(PROTOCOL_ERROR, "a new message inside a fragmented one")
        elif not fin:
            self._fragments = bytearray(payload)
            self._opcode = opcode
            if opcode == OP_TEXT:
                self._decoder = _utf8_decoder()
                _check_utf8(self._decoder, payload, False)
            return None
        if opcode == OP_TEXT:
            try:
                return Message(payload.decode())
            except UnicodeDecodeError:
                raise FrameError(INVALID_TEXT, "text frame is not UTF-8") from None
        return Message(payload)


def _check_utf8(decoder: codecs.IncrementalDecoder, fragment: bytes, final: bool) -> None:
    """Fail as soon as the bytes so far cannot begin valid UTF-8 (a sequence cut at
    the fragment's end waits for the next one)."""
    try:
        decoder.decode(fragment, final)
    except UnicodeDecodeError:
        raise FrameError(INVALID_TEXT, "text frame is not UTF-8") from None


# --- the handshake (RFC 6455 section 4.2) -----------------------------------------------

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HandshakeError(Exception):
    """The upgrade request is not a websocket handshake we accept (HTTP 400)."""


def accept_key(key: str) -> str:
    """`Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`."""
    return base64.b64encode(hashlib.sha1(key.encode() + _WS_GUID).digest()).decode()


def handshake_answer(headers: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    """The 101's headers and the subprotocol chosen for an upgrade request's `headers`
    (case-insensitive mapping); raises HandshakeError with aiohttp's words for each
    refusal, so clients see what aiohttp's own WebSocketResponse would answer."""
    upgrade = headers.get("Upgrade")
    if (upgrade or "").lower().strip() != "websocket":
        raise HandshakeError(
            f'No WebSocket UPGRADE hdr: {upgrade}\n Can "Upgrade" only to "WebSocket".'
        )
    connection = headers.get("Connection", "")
    if "upgrade" not in {t.strip().lower() for t in connection.split(",")}:
        raise HandshakeError(f"No CONNECTION upgrade hdr: {headers.get('Connection')}")
    subprotocol = None
    for offered in headers.get("Sec-WebSocket-Protocol", "").split(","):
        if offered.strip() in SUBPROTOCOLS:
            subprotocol = offered.strip()
            break
    version = headers.get("Sec-WebSocket-Version", "")
    if version not in ("13", "8", "7"):
        raise HandshakeError(f"Unsupported version: {version}")
    key = headers.get("Sec-WebSocket-Key")
    try:
        if not key or len(base64.b64decode(key)) != 16:
            raise HandshakeError(f"Handshake error: {key!r}")
    except binascii.Error:
        raise HandshakeError(f"Handshake error: {key!r}") from None
    answer = {"Upgrade": "websocket", "Connection": "upgrade",
              "Sec-WebSocket-Accept": accept_key(key)}  # fmt: skip
    if subprotocol:
        answer["Sec-WebSocket-Protocol"] = subprotocol
    return answer, subprotocol


def encode_frame(codec: Codec, message: dict[str, Any]) -> bytes:
    return ws_frame(codec.encode(message), codec.binary)


def event_message(topic: str, cursor: int, type_: str, data: Any) -> dict[str, Any]:
    return {"op": "event", "topic": topic, "cursor": str(cursor), "type": type_, "data": data}


def ack_message(request_id: Any, **fields: Any) -> dict[str, Any]:
    return {"op": "ack", "id": request_id, **fields}


def pong_message(request_id: Any) -> dict[str, Any]:
    return {"op": "pong", "id": request_id}


def error_message(request_id: Any, code: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"op": "error", "id": request_id, "code": code, "message": message}
    body.update(extra)
    return body


# --- client requests -------------------------------------------------------------------

OPS = ("sub", "unsub", "post", "ping")
MAX_TOPIC_LENGTH = 200


@dataclass(frozen=True, slots=True)
class PingRequest:
    """`ping`: answered with a `pong` carrying the same id."""

    id: Any


@dataclass(frozen=True, slots=True)
class SubRequest:
    """`sub`: subscribe to `topic`, replaying what came after `since` if given."""

    id: Any
    topic: str
    since: int | None = None
    filter: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class UnsubRequest:
    id: Any
    topic: str


@dataclass(frozen=True, slots=True)
class PostRequest:
    """`post`: the whole frame is the payload, validated by the posting service."""

    id: Any
    body: dict[str, Any]


Request = PingRequest | SubRequest | UnsubRequest | PostRequest


def parse_cursor(raw: Any) -> int:
    """Cursors are decimal strings of a non-negative integer."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValueError("cursor must be a string")
    text = str(raw)
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        raise ValueError("cursor must be a decimal string")
    return int(text)


def read_request(data: bytes | str) -> Request:
    """Decode and validate one client message. Raises ProtocolError, never anything else.

    The frame's type decides how it is read, whatever codec the socket negotiated: a
    text frame is JSON, a binary frame is msgpack (replies use the negotiated codec).
    """
    try:
        obj = orjson.loads(data) if isinstance(data, str) else _msgpack_decode(data)
    except Exception:
        kind = "JSON" if isinstance(data, str) else "msgpack"
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
        return PingRequest(request_id)
    if op == "post":
        return PostRequest(request_id, obj)
    topic = obj.get("topic")
    if not isinstance(topic, str) or not topic or len(topic) > MAX_TOPIC_LENGTH:
        raise ProtocolError("bad_topic", "'topic' must be a non-empty string", request_id)
    if op == "unsub":
        return UnsubRequest(request_id, topic)
    since = None
    if obj.get("since") is not None:
        try:
            since = parse_cursor(obj["since"])
        except ValueError as exc:
            raise ProtocolError("bad_cursor", str(exc), request_id) from None
    flt = obj.get("filter")
    if flt is not None and not isinstance(flt, dict):
        raise ProtocolError("bad_filter", "'filter' must be an object", request_id)
    return SubRequest(request_id, topic, since, flt)
