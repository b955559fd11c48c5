"""The media workers' decoding on files made now (Pillow, PyAV), run in this process,
and the pool's limits (time, memory) on real worker processes."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
from PIL import Image
from PIL.WebPImagePlugin import WebPImageFile

from server.domain.errors import DomainError
from server.services.imaging import Processed, Refusal, make_avatar, process_upload
from server.services.media_pool import MediaPool
from tests import media_files as mf
from tests import media_jobs

KEY = b"k" * 32


def opened(path: str) -> Image.Image:
    """The picture at `path`, loaded (and its file closed)."""
    with Image.open(path) as im:
        im.load()
        frames = getattr(im, "n_frames", 1)
        out = im.copy()
    out.info["frames"] = frames
    return out


def run(tmp_path: Path, data: bytes) -> Processed | Refusal:
    src = tmp_path / "upload"
    src.write_bytes(data)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return process_upload(str(src), str(work), KEY)


def done(tmp_path: Path, data: bytes) -> Processed:
    result = run(tmp_path, data)
    assert isinstance(result, Processed), result
    return result


def test_a_photo_gets_two_renditions_named_by_a_keyed_hash(tmp_path: Path) -> None:
    result = done(tmp_path, mf.photo((4000, 3000)))
    assert (result.large.width, result.large.height) == (2048, 1536)
    assert (result.small.width, result.small.height) == (640, 480)
    assert result.large.name.endswith("." + result.large.ext)
    # The same bytes under another key get another name: nobody can compute it.
    other = process_upload(str(tmp_path / "upload"), str(tmp_path / "work"), b"x" * 32)
    assert isinstance(other, Processed) and other.large.name != result.large.name
    assert len(result.blurhash) == 28


def test_gps_and_camera_are_gone_and_orientation_is_applied(tmp_path: Path) -> None:
    result = done(tmp_path, mf.exif_photo(orientation=8, gps=True))
    raw = Path(result.large.path).read_bytes()
    assert b"SecretCam" not in raw and b"Exif" not in raw
    im = Image.open(io.BytesIO(raw))
    assert (im.width, im.height) == (200, 400) and not im.getexif()
    # Orientation 8: turned 90 degrees counter-clockwise; the red left half goes down.
    rgb = im.convert("RGB")
    assert mf.rgb_at(rgb, (100, 350))[0] > 200 and mf.rgb_at(rgb, (100, 50))[2] > 200


@pytest.mark.parametrize(
    ("data", "mode_check"),
    [
        (mf.cmyk_jpeg(), lambda im: im.convert("RGB").getpixel((5, 5))[0] > 200),
        (mf.grey16_png(65535), lambda im: im.convert("L").getpixel((5, 5)) > 245),
        (mf.grey16_png(0), lambda im: im.convert("L").getpixel((5, 5)) < 10),
        (mf.palette_png(), lambda im: im.convert("RGBA").getpixel((0, 0))[3] == 0),
    ],
    ids=["cmyk", "16-bit white", "16-bit black", "palette with transparency"],
)
def test_awkward_modes(tmp_path: Path, data: bytes, mode_check: object) -> None:
    result = done(tmp_path, data)
    im = opened(result.large.path)
    assert callable(mode_check) and mode_check(im)


def test_animation_is_kept(tmp_path: Path) -> None:
    result = done(tmp_path, mf.animated_gif(6))
    with Image.open(result.large.path) as im:
        assert im.format == "WEBP" and isinstance(im, WebPImageFile) and im.n_frames == 6


def test_too_many_animation_frames_are_refused(tmp_path: Path) -> None:
    result = run(tmp_path, mf.animated_gif(1001, (4, 4)))
    assert isinstance(result, Refusal) and result.code == "image_too_large"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (mf.truncated(mf.photo()), "media_unreadable"),
        (mf.png_header_only(50_000, 50_000), "image_too_large"),
        (mf.png_header_only(7000, 6000), "image_too_large"),  # 42 MP: over the limit
        (mf.png_text_bomb(), "image_too_large"),
        (mf.svg_as_jpeg(), "unsupported_media"),
        (mf.polyglot(), "unsupported_media"),
        *[(mf.with_html_after(fmt), "unsupported_media") for fmt in ("JPEG", "PNG", "GIF", "WEBP")],
        (mf.encoded(Image.new("RGB", (8, 8)), "BMP"), "unsupported_media"),
        (mf.encoded(Image.new("RGB", (8, 8)), "TIFF"), "unsupported_media"),
    ],
)
def test_refusals(tmp_path: Path, data: bytes, code: str) -> None:
    result = run(tmp_path, data)
    assert isinstance(result, Refusal), result
    assert result.code == code
    assert isinstance(result.error(), DomainError)


def test_a_video_is_remuxed_without_metadata_index_first_with_a_poster(tmp_path: Path) -> None:
    original = mf.video(1.0)
    assert original.find(b"moov") > original.find(b"mdat")  # index at the end
    result = done(tmp_path, original)
    assert result.type == "video" and result.large.ext == "mp4"
    assert 0.9 < (result.duration or 0) < 1.2
    raw = Path(result.large.path).read_bytes()
    assert raw.find(b"moov") < raw.find(b"mdat")  # faststart
    assert b"secret title" not in raw and b"Lavf" not in raw
    with av.open(result.large.path) as c:
        assert "title" not in c.metadata
        assert [s.codec_context.name for s in c.streams] == ["h264", "aac"]
    poster = opened(result.small.path)
    assert poster.size == (64, 48)


def test_webm_with_vp9_and_opus_is_accepted(tmp_path: Path) -> None:
    result = done(tmp_path, mf.video(1.0, container="webm", codec="libvpx-vp9",
                                     audio="libopus"))  # fmt: skip
    assert result.large.ext == "webm"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (mf.video(61, fps=1, audio=None), "video_too_long"),
        (mf.video(1.0, size=(2560, 1440), fps=2, audio=None), "video_too_large"),
        (mf.video(1.0, codec="mpeg4", audio=None), "unsupported_media"),
        (mf.video(1.0, container="matroska", audio=None), "unsupported_media"),
        (mf.truncated(mf.video(1.0)), "media_unreadable"),
    ],
    ids=["61 s", "1440p", "mpeg4", "matroska", "truncated"],
)
def test_video_refusals(tmp_path: Path, data: bytes, code: str) -> None:
    result = run(tmp_path, data)
    assert isinstance(result, Refusal), result
    assert result.code == code


def test_avatar_is_a_centred_square(tmp_path: Path) -> None:
    src = tmp_path / "wide.png"
    im = Image.new("RGB", (900, 300), (0, 0, 255))
    im.paste((255, 0, 0), (300, 0, 600, 300))
    im.save(src)
    square = make_avatar(str(src), str(tmp_path), KEY)
    assert not isinstance(square, Refusal)
    out = opened(square.path).convert("RGB")
    assert out.size == (300, 300) and mf.rgb_at(out, (5, 150))[0] > 200


@pytest.mark.parametrize("job", [media_jobs.spin, media_jobs.sleep_for],
                         ids=["out of CPU time", "out of real time"])  # fmt: skip
async def test_pool_runs_jobs_and_ends_one_past_its_deadline(job: object) -> None:
    pool = MediaPool(1, memory_limit=0, job_seconds=0.5)
    try:
        assert await pool.run(media_jobs.echo, "hi") == "hi"
        with pytest.raises(DomainError) as err:
            await pool.run(job, 8.0)  # type: ignore[arg-type]
        assert (err.value.code, err.value.status) == ("media_too_complex", 422)
        assert await pool.run(media_jobs.echo, "still here") == "still here"
    finally:
        pool.close()


async def test_pool_caps_each_workers_memory() -> None:
    pool = MediaPool(1, memory_limit=512 * 1024 * 1024, job_seconds=10.0)
    try:
        assert await pool.run(media_jobs.allocate, 16) == "got 16"
        assert await pool.run(media_jobs.allocate, 1024) == "refused"
    finally:
        pool.close()
