"""The client side of RFC 6455, sans I/O: handshake bytes, masked frames, a frame parser.

Fed bytes, it hands back bytes and callbacks; the asyncio shell lives in
:mod:`loadtest.client`. The parser is the load generator's hot path, so it reads only
frame headers and hands each data frame to the caller as ``(buffer, start, end)`` — no
slicing, no decoding. Whether a payload is ever decoded is the caller's choice.
Server frames are unmasked; a masked one is a protocol error. Fragmented messages are
reassembled (rare from servers, but legal). No extensions are negotiated.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEADER_BYTES = 16 * 1024


class ProtocolError(Exception):
    """The peer broke RFC 6455 (or refused the upgrade)."""


class HandshakeRefused(ProtocolError):
    """The server answered the upgrade with something other than 101."""

    def __init__(self, status: int, reason: str, body: bytes) -> None:
        super().__init__(f"upgrade refused: {status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_for(key: str) -> str:
    digest = hashlib.sha1(key.encode("ascii") + _GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def handshake_request(
    host: str,
    path: str,
    key: str,
    *,
    subprotocols: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The HTTP/1.1 upgrade request (``host`` is the Host header value, with port)."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocols:
        lines.append("Sec-WebSocket-Protocol: " + ", ".join(subprotocols))
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    status: int
    reason: str
    headers: dict[str, str]  # lower-cased names
    subprotocol: str | None


def parse_handshake_response(
    buf: bytes | bytearray, key: str
) -> tuple[HandshakeResponse, int] | None:
    """Parse the upgrade response from the start of ``buf``.

    Returns ``(response, bytes_consumed)``, or ``None`` while the header is incomplete.
    Raises :class:`HandshakeRefused` for a non-101 answer (with whatever body already
    arrived) and :class:`ProtocolError` for a bad accept key.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_HEADER_BYTES:
            raise ProtocolError("handshake response header too large")
        return None
    head = bytes(buf[:end]).decode("latin-1")
    status_line, *header_lines = head.split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ProtocolError(f"bad status line {status_line!r}")
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if status != 101:
        raise HandshakeRefused(status, reason, bytes(buf[end + 4 :]))
    if headers.get("sec-websocket-accept") != accept_for(key):
        raise ProtocolError("bad Sec-WebSocket-Accept")
    response = HandshakeResponse(status, reason, headers, headers.get("sec-websocket-protocol"))
    return response, end + 4


def mask_payload(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` (as one big-integer operation, fast)."""
    n = len(payload)
    if n == 0:
        return b""
    reps = (mask * ((n + 3) // 4))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(reps, "little")).to_bytes(
        n, "little"
    )


def encode_frame(opcode: int, payload: bytes, *, mask: bool = True, fin: bool = True) -> bytes:
    """One frame; client frames must be masked (``mask=True``), server frames not."""
    n = len(payload)
    head = bytearray([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if mask else 0
    if n < 126:
        head.append(mask_bit | n)
    elif n < 65536:
        head.append(mask_bit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(mask_bit | 127)
        head += n.to_bytes(8, "big")
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4)
    return bytes(head) + key + mask_payload(payload, key)


def encode_close(code: int = 1000, reason: str = "", *, mask: bool = True) -> bytes:
    return encode_frame(OP_CLOSE, code.to_bytes(2, "big") + reason.encode("utf-8"), mask=mask)


def parse_close(payload: bytes) -> tuple[int, str]:
    if len(payload) < 2:
        return 1005, ""
    return int.from_bytes(payload[:2], "big"), payload[2:].decode("utf-8", "replace")


#: ``on_data(buffer, start, end, opcode)``: a complete text/binary message lies in
#: ``buffer[start:end]``; the buffer is only valid during the call.
DataHandler = Callable[[bytes | bytearray, int, int, int], None]
#: ``on_control(opcode, payload)`` for ping, pong and close.
ControlHandler = Callable[[int, bytes], None]


class FrameParser:
    """Splits a stream of server frames into messages, reading only the headers.

    A frame cut by a read waits in ``_pend`` until ``_need`` bytes are there, then is
    parsed from a ``bytes`` copy of them: whatever the parser hands on is a slice of
    ``bytes`` (hashable), never of a growing buffer, and a long frame arriving in
    small reads is not re-scanned on every read.
    """

    __slots__ = ("_frag", "_frag_op", "_need", "_pend", "frames", "on_control", "on_data")

    def __init__(self, on_data: DataHandler, on_control: ControlHandler) -> None:
        self.on_data = on_data
        self.on_control = on_control
        self._pend = bytearray()  # the start of a frame cut by the end of a read
        self._need = 0  # bytes ``_pend`` must hold before parsing can go on
        self._frag: bytearray | None = None
        self._frag_op = 0
        self.frames = 0  # every complete frame, control frames included

    def feed(self, data: bytes) -> None:
        pend = self._pend
        if pend:
            pend += data
            if len(pend) < self._need:
                return
            data = bytes(pend)
            pend.clear()
        n = len(data)
        pos = 0
        need = 0
        on_data = self.on_data
        frames = 0
        try:
            while pos < n:
                b0 = data[pos]
                if n - pos < 2:
                    need = 2
                    break
                length = data[pos + 1]
                if length < 126:
                    start = pos + 2
                elif length == 126:
                    if n - pos < 4:
                        need = 4
                        break
                    length = (data[pos + 2] << 8) | data[pos + 3]
                    start = pos + 4
                elif length == 127:
                    if n - pos < 10:
                        need = 10
                        break
                    length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                    start = pos + 10
                else:
                    raise ProtocolError("server frame is masked")
                end = start + length
                if end > n:
                    need = end - pos
                    break
                frames += 1
                if b0 == 0x81 or b0 == 0x82:  # the common case: a whole text/binary message
                    on_data(data, start, end, b0 & 0x0F)
                else:
                    self._other_frame(b0, b0 & 0x0F, data[start:end])
                pos = end
        finally:
            self.frames += frames
        if pos < n:
            self.keep(data, pos, need)

    def keep(self, data: bytes, pos: int, need: int) -> None:
        """Keep ``data[pos:]``, an incomplete frame that needs ``need`` bytes in all."""
        self._pend += memoryview(data)[pos:]
        self._need = need

    def _other_frame(self, b0: int, opcode: int, payload: bytes) -> None:
        fin = bool(b0 & 0x80)
        if b0 & 0x70:
            raise ProtocolError("reserved bits set (no extension was negotiated)")
        if opcode >= 0x8:
            if not fin or len(payload) > 125:
                raise ProtocolError("bad control frame")
            self.on_control(opcode, payload)
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._frag is not None:
                raise ProtocolError("new message inside a fragmented one")
            self._frag = bytearray(payload)
            self._frag_op = opcode
        elif opcode == OP_CONT:
            if self._frag is None:
                raise ProtocolError("continuation without a message")
            self._frag += payload
            if fin:
                whole = bytes(self._frag)
                self._frag = None
                self.on_data(whole, 0, len(whole), self._frag_op)
        else:
            raise ProtocolError(f"unknown opcode {opcode}")
