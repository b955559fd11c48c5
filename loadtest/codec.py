"""Wire encodings the load tester speaks: Echo Hub's JSON/msgpack envelopes, Socket.IO.

Also the *marker*: every post's text is ``lt <poster> <seq> <send_time_ns>``. The text
travels verbatim inside the event whatever the codec (a JSON string, a msgpack str, a
Socket.IO JSON array), so one byte-level regex finds it in a frame without decoding
the frame. That is what lets a reader account for every delivery at ~1M frames/s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgpack
import orjson

from loadtest import wsproto

MARKER_RE = re.compile(rb"lt (\d+) (\d+) (\d+)")


def marker_text(poster: int, seq: int, sent_ns: int) -> str:
    """The text of post ``seq`` of ``poster`` sent at ``sent_ns`` (``time.time_ns()``)."""
    return f"lt {poster} {seq} {sent_ns}"


def parse_marker(text: str | bytes) -> tuple[int, int, int] | None:
    """``(poster, seq, sent_ns)`` from a post text, or ``None``."""
    data = text.encode() if isinstance(text, str) else text
    m = MARKER_RE.search(data)
    if m is None:
        return None
    return int(m[1]), int(m[2]), int(m[3])


@dataclass(frozen=True, slots=True)
class EchoCodec:
    """One of Echo Hub's two websocket subprotocols."""

    name: str  # "json" | "msgpack"

    @property
    def subprotocol(self) -> str:
        return f"echohub.v1.{self.name}"

    @property
    def opcode(self) -> int:
        return wsproto.OP_TEXT if self.name == "json" else wsproto.OP_BINARY

    def encode(self, obj: dict[str, Any]) -> bytes:
        if self.name == "json":
            return orjson.dumps(obj)
        packed: bytes = msgpack.packb(obj, use_bin_type=True)
        return packed

    def decode(self, data: bytes) -> Any:
        if self.name == "json":
            return orjson.loads(data)
        return msgpack.unpackb(data, raw=False)


CODECS = {"json": EchoCodec("json"), "msgpack": EchoCodec("msgpack")}


# --- Engine.IO v4 / Socket.IO v5 over a websocket: one packet per frame -------------

EIO_OPEN = "0"
EIO_CLOSE = "1"
EIO_PING = "2"
EIO_PONG = "3"
EIO_MESSAGE = "4"
SIO_CONNECT = "0"
SIO_DISCONNECT = "1"
SIO_EVENT = "2"
SIO_ACK = "3"
SIO_CONNECT_ERROR = "4"


def sio_connect(auth: dict[str, Any] | None = None) -> bytes:
    return b"40" + (orjson.dumps(auth) if auth is not None else b"")


def sio_event(event: str, data: Any, ack_id: int | None = None) -> bytes:
    head = b"42" if ack_id is None else b"42" + str(ack_id).encode()
    return head + orjson.dumps([event, data])


@dataclass(frozen=True, slots=True)
class SioPacket:
    eio: str  # Engine.IO packet type
    sio: str | None = None  # Socket.IO packet type inside an EIO message
    ack_id: int | None = None
    data: Any = None


def parse_sio(frame: bytes | str) -> SioPacket:
    """Parse one Engine.IO packet (and the Socket.IO packet inside a message)."""
    text = frame.decode("utf-8") if isinstance(frame, bytes | bytearray) else frame
    if not text:
        raise ValueError("empty Engine.IO packet")
    eio = text[0]
    if eio == EIO_OPEN:
        return SioPacket(eio, data=orjson.loads(text[1:]))
    if eio != EIO_MESSAGE:
        return SioPacket(eio, data=text[1:] or None)
    if len(text) < 2:
        raise ValueError("empty Socket.IO packet")
    sio = text[1]
    rest = text[2:]
    # a namespace other than "/" would appear here as "/nsp,"; we only use "/"
    i = 0
    while i < len(rest) and rest[i].isdigit():
        i += 1
    ack_id = int(rest[:i]) if i else None
    payload = orjson.loads(rest[i:]) if rest[i:] else None
    return SioPacket(eio, sio, ack_id, payload)
