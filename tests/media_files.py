"""Media files made at test time with Pillow and PyAV: pictures of every awkward kind,
hostile files, and tiny videos."""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction
from typing import TYPE_CHECKING, Any, cast

from PIL import Image

if TYPE_CHECKING:
    from av.audio.stream import AudioStream
    from av.video.stream import VideoStream


def rgb_at(im: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    """The bands of one pixel of a multi-band picture (RGB, RGBA)."""
    pixel = im.getpixel(xy)
    assert isinstance(pixel, tuple), (im.mode, pixel)
    return pixel


def encoded(im: Image.Image, fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


def photo(size: tuple[int, int] = (800, 600), **options: Any) -> bytes:
    """A JPEG with some structure (a gradient and a red square)."""
    im = Image.linear_gradient("L").resize(size).convert("RGB")
    im.paste((200, 30, 30), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    return encoded(im, "JPEG", quality=90, **options)


def exif_photo(orientation: int = 1, gps: bool = False) -> bytes:
    """A 400x200 JPEG, left half red, with an EXIF orientation, a camera and GPS."""
    im = Image.new("RGB", (400, 200), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 200, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "SecretCam Maker"
    exif[0x0110] = "SecretCam 9000"
    if gps:
        exif[0x8825] = {1: "N", 2: (35.0, 39.0, 29.0), 3: "E", 4: (139.0, 44.0, 28.0)}
    return encoded(im, "JPEG", exif=exif.tobytes(), quality=95)


def cmyk_jpeg() -> bytes:
    return encoded(Image.new("CMYK", (120, 80), (0, 255, 255, 0)), "JPEG")


def grey16_png(value: int = 32768) -> bytes:
    return encoded(Image.new("I;16", (100, 50), value), "PNG")


def palette_png() -> bytes:
    """A palette PNG: index 0 transparent, a green square of index 1."""
    im = Image.new("P", (64, 64), 0)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.paste(1, (16, 16, 48, 48))
    return encoded(im, "PNG", transparency=0)


def animated_gif(frames: int = 4, size: tuple[int, int] = (120, 80)) -> bytes:
    pictures = [Image.new("RGB", size, (60 * i % 256, 100 + i % 2, 200)) for i in range(frames)]
    buf = io.BytesIO()
    pictures[0].save(buf, "GIF", save_all=True, append_images=pictures[1:], duration=80, loop=0)
    return buf.getvalue()


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` with a tiny (bomb-sized) compressed body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1024 * 1024, 9)
    chunks = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def png_text_bomb() -> bytes:
    """A small valid PNG carrying a zTXt chunk that inflates to 200 MB."""
    base = encoded(Image.new("RGB", (8, 8), (1, 2, 3)), "PNG")
    comp = zlib.compressobj(9)
    bomb = b"".join(comp.compress(b"\x00" * (1 << 20)) for _ in range(200)) + comp.flush()
    ztxt = _chunk(b"zTXt", b"Comment\x00\x00" + bomb)
    return base[:33] + ztxt + base[33:]


def svg_as_jpeg() -> bytes:
    return (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
            b"<script>alert(2)</script></svg>")


def html_as_jpeg() -> bytes:
    return b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


def polyglot() -> bytes:
    """A JPEG's signature followed by HTML: a file that is both (to a lenient sniffer)."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + html_as_jpeg() * 20


def with_html_after(fmt: str = "JPEG", size: tuple[int, int] = (10, 10)) -> bytes:
    """A valid picture with an HTML page appended after its end: a real polyglot."""
    picture = encoded(Image.new("RGB", size, (30, 90, 160)), fmt)
    return picture + b"<html><script>alert(document.cookie)</script></html>"


def video(seconds: float = 1.0, *, container: str = "mp4", codec: str = "libx264",
          size: tuple[int, int] = (64, 48), fps: int = 10, audio: str | None = "aac",
          title: str = "secret title") -> bytes:  # fmt: skip
    """A tiny video encoded now (PyAV), with a title in its metadata."""
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        out.metadata["title"] = title
        stream = cast("VideoStream", out.add_stream(codec, rate=fps))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        sound = None
        if audio is not None:
            sound = cast("AudioStream", out.add_stream(audio, rate=48000))
            sound.layout = "mono"
        frames = max(1, int(seconds * fps))
        for i in range(frames):
            im = Image.new("RGB", size, (i * 7 % 256, 80, 160))
            frame = av.VideoFrame.from_image(im)
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if sound is not None:
            _silence(out, sound, seconds)
    return buf.getvalue()


def _silence(out: Any, sound: Any, seconds: float) -> None:
    import av

    samples = int(48000 * seconds)
    frame_size = sound.codec_context.frame_size or 1024
    pts = 0
    while pts < samples:
        frame = av.AudioFrame(format="fltp", layout="mono", samples=frame_size)
        for plane in frame.planes:
            plane.update(b"\x00" * plane.buffer_size)
        frame.rate = 48000
        frame.pts = pts
        pts += frame_size
        for packet in sound.encode(frame):
            out.mux(packet)
    for packet in sound.encode():
        out.mux(packet)
