"""The polyglot rule: where an image ends, and what real files may carry after it."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from server.domain.image_end import allowed_after_image, has_data_after_image, image_end
from tests import media_files as mf

HTML = b"<html><script>alert(document.cookie)</script></html>"


def _rgb() -> Image.Image:
    im = Image.linear_gradient("L").resize((300, 200)).convert("RGB")
    im.paste((200, 30, 30), (20, 20, 120, 90))
    return im


def _animation(fmt: str) -> bytes:
    frames = [Image.new("RGB", (50, 40), (i * 50, 90, 10)) for i in range(4)]
    out = io.BytesIO()
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)
    return out.getvalue()


PILLOW_FILES = {
    "jpeg": mf.encoded(_rgb(), "JPEG"),
    "jpeg progressive": mf.encoded(_rgb(), "JPEG", progressive=True),
    "jpeg optimised": mf.encoded(_rgb(), "JPEG", optimize=True, quality=95),
    "jpeg restart markers": mf.encoded(_rgb(), "JPEG", restart_marker_blocks=1),
    "jpeg exif and gps": mf.exif_photo(6, gps=True),
    "jpeg cmyk": mf.cmyk_jpeg(),
    "png": mf.encoded(_rgb(), "PNG"),
    "png 16-bit": mf.grey16_png(),
    "png palette": mf.palette_png(),
    "apng": _animation("PNG"),
    "gif": mf.encoded(_rgb().convert("P"), "GIF"),
    "gif animated": _animation("GIF"),
    "webp": mf.encoded(_rgb(), "WEBP"),
    "webp lossless": mf.encoded(_rgb(), "WEBP", lossless=True),
    "webp animated": _animation("WEBP"),
}
JPEG = PILLOW_FILES["jpeg"]


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


MP4 = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41") + _box(b"mdat", b"\x01" * 300) + _box(
    b"moov", b"\x02" * 100
)


def _samsung(blocks: bytes) -> bytes:
    directory = b"SEFH" + b"\x6a\x00\x00\x00\x01\x00\x00\x00" + b"\x00" * 12
    return blocks + directory + struct.pack("<I", len(directory)) + b"SEFT"


@pytest.mark.parametrize("name", PILLOW_FILES)
def test_pillow_files_end_where_the_file_does(name: str) -> None:
    data = PILLOW_FILES[name]
    assert image_end(data) == len(data)
    assert not has_data_after_image(data)
    # Padding after the end is what encoders and tools leave: allowed.
    for padding in (b"\n", b"\r\n", b"\x00" * 100, b"\xff\xff"):
        assert not has_data_after_image(data + padding), padding


@pytest.mark.parametrize("name", PILLOW_FILES)
def test_anything_else_after_the_end_is_refused(name: str) -> None:
    data = PILLOW_FILES[name]
    assert has_data_after_image(data + HTML)
    assert has_data_after_image(data + b"\n" + HTML)
    assert has_data_after_image(data + b"PK\x03\x04" + b"\x00" * 26)  # a zip
    assert has_data_after_image(data + b"x")


@pytest.mark.parametrize(
    ("what", "after"),
    [
        ("a multi-picture JPEG (MPF) or an Ultra HDR gain map", JPEG),
        ("two more pictures, padded between", b"\x00" * 4 + JPEG + JPEG + b"\x00"),
        ("a Google motion photo: a video after the pictures", JPEG + MP4),
        ("a motion photo without a gain map", MP4),
        ("a Samsung trailer", _samsung(b"\x00\x00\x01\x0aImage_UTC_Data1700000000000")),
        ("a Samsung motion photo", _samsung(b"MotionPhoto_Data" + MP4)),
    ],
)
def test_what_cameras_append_to_a_jpeg_is_allowed(what: str, after: bytes) -> None:
    assert not has_data_after_image(JPEG + after), what


@pytest.mark.parametrize(
    ("what", "after"),
    [
        ("HTML after an appended picture", JPEG + HTML),
        ("an appended picture cut short", JPEG[: len(JPEG) // 2]),
        ("HTML after a video", MP4 + HTML),
        ("HTML that starts like a video box", b"\x00\x00\x00\x10ftypisom" + HTML),
        ("a Samsung signature without its directory", HTML + b"\x10\x00\x00\x00SEFT"),
    ],
)
def test_look_alikes_of_those_are_refused(what: str, after: bytes) -> None:
    assert has_data_after_image(JPEG + after), what


def test_only_a_jpeg_may_carry_pictures_or_video_after_it() -> None:
    png = PILLOW_FILES["png"]
    assert has_data_after_image(png + JPEG)
    assert has_data_after_image(png + MP4)
    assert not allowed_after_image(png + MP4, len(png))


def test_the_end_of_the_audits_polyglot_is_found() -> None:
    data = mf.with_html_after("JPEG")
    end = image_end(data)
    assert end is not None and data[end:] == HTML
    assert has_data_after_image(data)


@pytest.mark.parametrize(
    "data",
    [
        mf.truncated(JPEG),
        mf.truncated(PILLOW_FILES["png"]),
        mf.truncated(PILLOW_FILES["gif"]),
        mf.truncated(PILLOW_FILES["webp"]),
        mf.polyglot(),  # a JPEG signature and no segments: the decoder refuses it
        b"",
        b"BM" + b"\x00" * 40,
    ],
)
def test_where_no_end_is_found_the_rule_says_nothing(data: bytes) -> None:
    assert image_end(data) is None
    assert not has_data_after_image(data)
