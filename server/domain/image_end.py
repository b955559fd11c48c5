"""Where an image file ends, and whether what follows it may stay: the polyglot rule.

A JPEG with HTML after its end marker decodes as a picture and, to a lenient sniffer,
reads as a page. What the server serves is re-encoded from pixels, so the appended bytes
never leave it; refusing such files anyway keeps "nothing that is not an image is
stored" true and gives the uploader a clear error (415 `unsupported_media`).

The end of each format: JPEG at its EOI marker (found by walking the segments and the
entropy-coded data, not by searching for FF D9), PNG after the IEND chunk, GIF at its
trailer byte, WebP at the size its RIFF header declares.

What may follow an image, because real encoders and cameras write it:
- padding: NUL, 0xFF and whitespace bytes, of any length (some encoders pad to a block;
  a text tool may add a newline);
- after a JPEG, further complete JPEGs: the Multi-Picture Format (CIPA DC-007) of many
  cameras, and Ultra HDR's gain map (Android) store their extra pictures there;
- after those, an ISO-BMFF (MP4) video whose boxes run exactly to the end of the file:
  Google's motion photos;
- a Samsung trailer: the file ends with a `SEFH` directory, its length and `SEFT`
  (Galaxy phones append one to many photos, and their motion photos).

Anything else after the end is refused. Where the end cannot be found (a damaged file),
this rule says nothing: the decoder refuses what it cannot read.

Pure: bytes in, an offset or an answer out.
"""

from __future__ import annotations

import struct

PADDING = frozenset(b"\x00\xff \t\r\n")
# Bounds on the walks (each step advances, so they also end on their own).
MAX_APPENDED_IMAGES = 16
MAX_BOXES = 100_000


def jpeg_end(data: bytes, start: int = 0) -> int | None:
    """The offset just after the EOI marker of the JPEG at `start`, or None if the
    segments do not lead there."""
    if data[start : start + 2] != b"\xff\xd8":
        return None
    pos, size = start + 2, len(data)
    while pos < size:
        if data[pos] != 0xFF:
            return None
        while pos < size and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= size:
            return None
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return pos
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers
            continue
        if pos + 2 > size:
            return None
        pos += struct.unpack_from(">H", data, pos)[0]
        if marker == 0xDA:  # a scan: entropy-coded data up to the next marker
            pos = _after_scan(data, pos)
    return None


def _after_scan(data: bytes, pos: int) -> int:
    """The offset of the first marker after entropy-coded data starting at `pos` (FF 00
    is a stuffed byte, FF D0..D7 a restart marker, both part of the scan)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            pos += 2
        elif following == 0xFF:
            pos += 1
        else:
            return pos


def png_end(data: bytes) -> int | None:
    """The offset just after the IEND chunk's CRC, or None."""
    pos, size = 8, len(data)
    while pos + 8 <= size:
        length, kind = struct.unpack_from(">I4s", data, pos)
        pos += 12 + length
        if kind == b"IEND":
            return pos if pos <= size else None
    return None


def gif_end(data: bytes) -> int | None:
    """The offset just after the GIF's trailer byte (0x3B), or None."""
    size = len(data)
    if size < 13:
        return None
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < size:
        block = data[pos]
        if block == 0x3B:
            return pos + 1
        if block == 0x21:  # an extension: its label, then sub-blocks
            pos = _after_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # an image: descriptor, local colour table, LZW size, data
            if pos + 10 > size:
                return None
            local = data[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1
            pos = _after_sub_blocks(data, pos)
        else:
            return None
    return None


def _after_sub_blocks(data: bytes, pos: int) -> int:
    while pos < len(data):
        length = data[pos]
        pos += 1 + length
        if length == 0:
            return pos
    return len(data) + 1  # ran out: past the end, so no end is found


def webp_end(data: bytes) -> int | None:
    """The end the RIFF header declares, or None if the file is shorter than that."""
    if len(data) < 12:
        return None
    end = 8 + int(struct.unpack_from("<I", data, 4)[0])
    return end if end <= len(data) else None


def image_end(data: bytes) -> int | None:
    """Where the image in `data` ends, by its signature's format; None if unknown."""
    if data[:3] == b"\xff\xd8\xff":
        return jpeg_end(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return png_end(data)
    if data[:4] == b"GIF8":
        return gif_end(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return webp_end(data)
    return None


def _padding_to(data: bytes, pos: int) -> int:
    """The offset after the padding at `pos` (an FF that starts a JPEG is not padding)."""
    while pos < len(data) and data[pos] in PADDING and not data.startswith(b"\xff\xd8", pos):
        pos += 1
    return pos


def _boxes_to_end(data: bytes, pos: int) -> bool:
    """Whether ISO-BMFF boxes, the first an `ftyp`, run from `pos` exactly to the end."""
    if data[pos + 4 : pos + 8] != b"ftyp":
        return False
    size = len(data)
    for _ in range(MAX_BOXES):
        if pos == size:
            return True
        if pos + 8 > size:
            return False
        length = struct.unpack_from(">I", data, pos)[0]
        if length == 0:  # the last box runs to the end
            return True
        if length == 1:
            if pos + 16 > size:
                return False
            length = struct.unpack_from(">Q", data, pos + 8)[0]
        if length < 8:
            return False
        pos += length
    return False


def _samsung_trailer(data: bytes, pos: int) -> bool:
    """Whether the file ends with a Samsung trailer whose directory lies after `pos`."""
    if len(data) < pos + 12 or data[-4:] != b"SEFT":
        return False
    directory = len(data) - 8 - int(struct.unpack_from("<I", data, len(data) - 8)[0])
    return pos <= directory and data[directory : directory + 4] == b"SEFH"


def allowed_after_image(data: bytes, end: int) -> bool:
    """Whether the bytes of `data` from `end` on are something real files carry after
    a picture (see the module's list), not something appended to it."""
    is_jpeg = data[:3] == b"\xff\xd8\xff"
    pos = end
    for _ in range(MAX_APPENDED_IMAGES):
        if is_jpeg and _boxes_to_end(data, pos):  # before padding: a box starts with NULs
            return True
        pos = _padding_to(data, pos)
        if pos == len(data):
            return True
        if not is_jpeg or data[pos : pos + 3] != b"\xff\xd8\xff":
            break
        appended = jpeg_end(data, pos)
        if appended is None:
            return False
        pos = appended
    return is_jpeg and (_boxes_to_end(data, pos) or _samsung_trailer(data, pos))


def has_data_after_image(data: bytes) -> bool:
    """Whether `data` is an image with something after its end that may not stay."""
    end = image_end(data)
    return end is not None and end < len(data) and not allowed_after_image(data, end)
