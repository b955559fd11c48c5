"""Media rules: limits, sizes, what a post may carry, and the blurhash (pure)."""

from __future__ import annotations

import pytest

from server.domain import media as rules
from server.domain.errors import DomainError


@pytest.mark.parametrize(
    ("head", "limit"),
    [
        (b"\xff\xd8\xff\xe0" + b"\x00" * 12, rules.MAX_IMAGE_BYTES),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 8, rules.MAX_IMAGE_BYTES),
        (b"GIF89a" + b"\x00" * 10, rules.MAX_IMAGE_BYTES),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", rules.MAX_IMAGE_BYTES),
        (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 4, rules.MAX_VIDEO_BYTES),
        (b"<svg xmlns=", rules.MAX_VIDEO_BYTES),  # unknown: the larger limit, then 415
    ],
)
def test_upload_limit_by_signature(head: bytes, limit: int) -> None:
    assert rules.upload_limit(head) == limit


@pytest.mark.parametrize(
    ("head", "container"),
    [
        (b"\x00\x00\x00\x18ftypisom", "mp4"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "webm"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska", None),
        (b"#EXTM3U\nfile:///etc/passwd", None),  # a playlist is never handed to FFmpeg
        (b"\xff\xd8\xff", None),
    ],
)
def test_video_container_by_signature(head: bytes, container: str | None) -> None:
    assert rules.video_container(head) == container


@pytest.mark.parametrize(
    ("raw", "result", "code"),
    [
        (None, "", None),
        ("  a cat on a mat ", "a cat on a mat", None),
        ("二行\nの説明", "二行\nの説明", None),
        ("x" * 1500, "x" * 1500, None),
        ("👍🏽" * 1500, "👍🏽" * 1500, None),  # one character each
        ("x" * 1501, None, "alt_too_long"),
        ("bell\x07", None, "alt_control_character"),
        (12, None, "invalid_alt"),
    ],
)
def test_validate_alt(raw: object, result: str | None, code: str | None) -> None:
    if code is None:
        assert rules.validate_alt(raw) == result
    else:
        with pytest.raises(DomainError) as err:
            rules.validate_alt(raw)
        assert (err.value.code, err.value.field) == (code, "alt")


ID = "0123456789abcdef0123"


@pytest.mark.parametrize(
    ("raw", "result", "code"),
    [
        (None, (), None),
        ([], (), None),
        ([ID], (ID,), None),
        ([ID[:-1] + str(i) for i in range(4)], tuple(ID[:-1] + str(i) for i in range(4)), None),
        ([ID[:-1] + str(i) for i in range(5)], None, "too_many_media"),
        ([ID, ID], None, "duplicate_media"),
        (ID, None, "invalid_media"),
        ([ID.upper()], None, "media_not_found"),
        ([5], None, "invalid_media"),
        ([None], None, "invalid_media"),
        ([{"id": ID}], None, "invalid_media"),
        ([ID, 5], None, "invalid_media"),
    ],
)
def test_parse_post_media(raw: object, result: tuple[str, ...] | None, code: str | None) -> None:
    if code is None:
        assert rules.parse_post_media(raw) == result
    else:
        with pytest.raises(DomainError) as err:
            rules.parse_post_media(raw)
        assert (err.value.code, err.value.field) == (code, "media")


def test_a_video_is_posted_alone() -> None:
    rules.check_post_media_types(["image"] * 4)
    rules.check_post_media_types(["video"])
    with pytest.raises(DomainError) as err:
        rules.check_post_media_types(["video", "image"])
    assert err.value.code == "too_many_media"


@pytest.mark.parametrize(
    ("size", "longest", "fitted"),
    [
        ((4000, 3000), 2048, (2048, 1536)),
        ((3000, 4000), 640, (480, 640)),
        ((100, 50), 640, (100, 50)),  # never enlarged
        ((10000, 3), 640, (640, 1)),  # never zero
    ],
)
def test_fit_within(size: tuple[int, int], longest: int, fitted: tuple[int, int]) -> None:
    assert rules.fit_within(*size, longest) == fitted


def test_square_crop_is_centred() -> None:
    assert rules.square_crop(400, 200) == (100, 0, 300, 200)
    assert rules.square_crop(200, 401) == (0, 100, 200, 300)


def probe(**changes: object) -> rules.VideoProbe:
    values: dict[str, object] = {
        "container": "mp4", "video_codec": "h264", "audio_codec": "aac",
        "width": 1920, "height": 1080, "fps": 60.0, "duration": 60.0,
    }  # fmt: skip
    values.update(changes)
    return rules.VideoProbe(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({}, None),
        ({"width": 1080, "height": 1920}, None),  # upright phone video
        ({"container": "webm", "video_codec": "vp9", "audio_codec": "opus"}, None),
        ({"video_codec": "av1", "audio_codec": None}, None),
        ({"video_codec": "hevc"}, "unsupported_media"),
        ({"video_codec": "mpeg4"}, "unsupported_media"),
        ({"audio_codec": "mp3"}, "unsupported_media"),
        ({"container": "webm", "video_codec": "h264"}, "unsupported_media"),
        ({"container": "webm", "video_codec": "vp9", "audio_codec": "aac"}, "unsupported_media"),
        ({"duration": 61.0}, "video_too_long"),
        ({"duration": float("nan")}, "video_unreadable"),
        ({"width": 2560, "height": 1440}, "video_too_large"),
        ({"width": 1920, "height": 1200}, "video_too_large"),
        ({"fps": 120.0}, "video_too_fast"),
    ],
)
def test_check_video(changes: dict[str, object], code: str | None) -> None:
    if code is None:
        rules.check_video(probe(**changes))
        return
    with pytest.raises(DomainError) as err:
        rules.check_video(probe(**changes))
    assert (err.value.code, err.value.field) == (code, "file")


def gradient(width: int, height: int) -> bytes:
    return bytes(v for y in range(height) for x in range(width)
                 for v in ((x * 8) % 256, (y * 10) % 256, ((x + y) * 5) % 256))  # fmt: skip


def test_blurhash_matches_the_reference_implementation() -> None:
    # The value the reference encoder (the `blurhash` package on PyPI, 4x3 components)
    # gives for this gradient.
    assert rules.blurhash(gradient(32, 24), 32, 24) == "LxH27+2jwzX7m9WYjvf5gIflfOfl"


def test_blurhash_of_a_flat_colour_has_only_its_average() -> None:
    red = bytes((255, 0, 0)) * 64
    value = rules.blurhash(red, 8, 8, 1, 1)
    assert len(value) == 6 and value[0] == "0"
    assert rules.blurhash(red, 8, 8, 4, 3)[2:6] == value[2:6]  # the same average colour


def test_blurhash_refuses_the_wrong_size() -> None:
    with pytest.raises(ValueError):
        rules.blurhash(b"\x00" * 10, 2, 2)


@pytest.mark.parametrize(
    ("header", "wanted"),
    [
        ("bytes=0-9", (0, 10)),
        ("bytes=10-", (10, 100)),
        ("bytes=-5", (95, 100)),
        ("bytes=90-200", (90, 100)),  # clipped to the end
        ("bytes=-500", (0, 100)),
        ("bytes=100-", False),  # starts past the end
        ("bytes=9-3", False),
        ("bytes=-0", False),
        ("bytes=" + "9" * 30 + "-", False),
        ("bytes=0-1,5-6", None),  # several ranges: the whole file is a valid answer
        ("items=0-9", None),
        ("bytes=x-y", None),
        ("bytes", None),
    ],
)
def test_byte_ranges(header: str, wanted: object) -> None:
    from server.handlers.media import _byte_range

    assert _byte_range(header, 100) == wanted
