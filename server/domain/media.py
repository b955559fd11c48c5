"""Media rules: what an upload may be, how its renditions are sized, what a post may
carry, and the blurhash placeholder. Pure: no I/O, no decoding (the media workers
decode and ask these rules; `server.services.imaging`).

Limits (SPEC "Media"): images of at most 16 MB and 40 megapixels, videos of at most
100 MB, 60 s, 1920x1080 (either way up) and 60 frames per second; alt text of at most
1,500 characters; a post carries up to four images or one video.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from server.domain.echo import visible_length
from server.domain.errors import (
    DomainError,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMedia,
)

MiB = 1024 * 1024
MAX_IMAGE_BYTES = 16 * MiB
MAX_VIDEO_BYTES = 100 * MiB
MAX_PIXELS = 40_000_000
# An animation is decoded frame by frame: its frames together may not exceed this.
MAX_ANIMATION_PIXELS = 60_000_000
MAX_FRAMES = 1000
LARGE_SIDE = 2048
SMALL_SIDE = 640
AVATAR_SIDE = 400
MAX_ALT = 1500
MAX_VIDEO_SECONDS = 60.0
MAX_VIDEO_LONG_SIDE = 1920
MAX_VIDEO_SHORT_SIDE = 1080
MAX_VIDEO_FPS = 60.0
MAX_PER_POST = 4
MEDIA_ID_LENGTH = 20

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
VIDEO_CODECS = ("h264", "vp9", "av1")
AUDIO_CODECS = ("aac", "opus")
# WebM is a profile of Matroska that allows only these (browsers refuse the rest).
WEBM_VIDEO_CODECS = ("vp9", "av1")
WEBM_AUDIO_CODECS = ("opus",)


_ACCEPTED = ("only JPEG, PNG, WebP, GIF images and MP4/WebM videos (H.264, VP9 or AV1 "
             "with AAC or Opus) are accepted")


def unsupported(message: str = _ACCEPTED) -> DomainError:
    return UnsupportedMedia("unsupported_media", message, field="file")


def too_large(limit: int) -> DomainError:
    return PayloadTooLarge("file_too_large", f"the file is larger than {limit // MiB} MB",
                           field="file")  # fmt: skip


def image_too_large(message: str) -> DomainError:
    return Unprocessable("image_too_large", message, field="file")


def upload_limit(head: bytes) -> int:
    """The byte limit of an upload, judged from its first bytes while it streams in.

    Only which limit applies is judged here (so an oversized image is refused at 16 MB,
    not 100); what the file is, is decided by decoding it afterwards.
    """
    if head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n" or head[:4] == b"GIF8":
        return MAX_IMAGE_BYTES
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return MAX_IMAGE_BYTES
    return MAX_VIDEO_BYTES


def video_container(head: bytes) -> str | None:
    """`mp4` or `webm` by the container's signature, else None: the demuxer is then
    chosen by us, never probed from the bytes (FFmpeg's probing reaches formats such as
    playlists that fetch other files)."""
    if head[4:8] == b"ftyp":
        return "mp4"
    # EBML, with the DocType `webm` in its header (plain Matroska is not for browsers).
    if head[:4] == b"\x1a\x45\xdf\xa3" and b"\x42\x82\x84webm" in head[:64]:
        return "webm"
    return None


def validate_alt(raw: object) -> str:
    """Alt text: a string of at most 1,500 characters, stripped; empty is allowed."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise DomainError("invalid_alt", "alt must be a string", field="alt")
    if len(raw) > MAX_ALT * 8:
        raise DomainError("alt_too_long", f"alt text is limited to {MAX_ALT} characters",
                          field="alt")  # fmt: skip
    text = raw.strip()
    if any((ord(ch) < 32 and ch not in "\n\t") or ch == "\x7f" for ch in text):
        raise DomainError("alt_control_character", "alt text has a control character",
                          field="alt")  # fmt: skip
    if visible_length(text) > MAX_ALT:
        raise DomainError("alt_too_long", f"alt text is limited to {MAX_ALT} characters",
                          field="alt")  # fmt: skip
    return text


def check_media_id(raw: object, field: str = "id") -> str:
    """A media id as this server makes them, else 404 (no such media)."""
    if (not isinstance(raw, str) or len(raw) != MEDIA_ID_LENGTH
            or any(ch not in "0123456789abcdef" for ch in raw)):  # fmt: skip
        raise media_not_found(field)
    assert isinstance(raw, str)
    return raw


def media_not_found(field: str = "id") -> DomainError:
    """The one answer for media that is missing, not the caller's, or not visible."""
    return NotFound("media_not_found", "no such media", field=field)


def parse_post_media(raw: object) -> tuple[str, ...]:
    """The `media` of a new post: a list of distinct media ids, at most four.

    Anything but a list of strings is a malformed request (400 `invalid_media`); a
    string that names no media of the author's is 404, whatever its form.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise DomainError("invalid_media", "media must be a list of media ids", field="media")
    if len(raw) > MAX_PER_POST:
        raise DomainError("too_many_media", f"a post carries at most {MAX_PER_POST} images "
                                            "or one video", field="media")  # fmt: skip
    ids = tuple(check_media_id(item, "media") for item in raw)
    if len(set(ids)) != len(ids):
        raise DomainError("duplicate_media", "the same media is listed twice", field="media")
    return ids


def check_post_media_types(types: Sequence[str]) -> None:
    """Up to four images, or one video alone."""
    if "video" in types and len(types) > 1:
        raise video_alone()


def video_alone() -> DomainError:
    return DomainError("too_many_media", "a video is posted alone", field="media")


def fit_within(width: int, height: int, longest: int) -> tuple[int, int]:
    """The size of `width` x `height` scaled down (never up) so that its longest side is
    at most `longest`; each side at least 1."""
    side = max(width, height)
    if side <= longest:
        return width, height
    scale = longest / side
    return max(1, round(width * scale)), max(1, round(height * scale))


def square_crop(width: int, height: int) -> tuple[int, int, int, int]:
    """The centred square (left, top, right, bottom) of an image: an avatar's crop."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


@dataclass(frozen=True, slots=True)
class VideoProbe:
    """What a video's probe found (filled by the media worker)."""

    container: str  # mp4 or webm
    video_codec: str
    audio_codec: str | None
    width: int
    height: int
    fps: float
    duration: float


def check_video(probe: VideoProbe) -> None:
    """Refuse a video browsers do not play, or one beyond the limits."""
    allowed_video = WEBM_VIDEO_CODECS if probe.container == "webm" else VIDEO_CODECS
    allowed_audio = WEBM_AUDIO_CODECS if probe.container == "webm" else AUDIO_CODECS
    if probe.video_codec not in allowed_video:
        raise unsupported(f"video codec {probe.video_codec} is not accepted in "
                          f"{probe.container}; use {' or '.join(allowed_video)}")  # fmt: skip
    if probe.audio_codec is not None and probe.audio_codec not in allowed_audio:
        raise unsupported(f"audio codec {probe.audio_codec} is not accepted in "
                          f"{probe.container}; use {' or '.join(allowed_audio)}")  # fmt: skip
    if not math.isfinite(probe.duration) or probe.duration <= 0:
        raise Unprocessable("video_unreadable", "the video's length cannot be read", "file")
    if probe.duration > MAX_VIDEO_SECONDS + 0.05:
        raise Unprocessable("video_too_long", f"the video is {probe.duration:.1f} s; the limit "
                            f"is {MAX_VIDEO_SECONDS:.0f} s", "file")  # fmt: skip
    long_side, short_side = max(probe.width, probe.height), min(probe.width, probe.height)
    if short_side <= 0 or long_side > MAX_VIDEO_LONG_SIDE or short_side > MAX_VIDEO_SHORT_SIDE:
        raise Unprocessable("video_too_large", f"the video is {probe.width}x{probe.height}; "
                            f"the limit is {MAX_VIDEO_LONG_SIDE}x{MAX_VIDEO_SHORT_SIDE}",
                            "file")  # fmt: skip
    if probe.fps > MAX_VIDEO_FPS + 0.5:
        raise Unprocessable("video_too_fast", f"the video has {probe.fps:.0f} frames per "
                            f"second; the limit is {MAX_VIDEO_FPS:.0f}", "file")  # fmt: skip


# --- blurhash (https://blurha.sh, the reference algorithm) ------------------------------

_B83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_TO_LINEAR = [((v / 255) / 12.92 if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4)
              for v in range(256)]  # fmt: skip


def _base83(value: int, length: int) -> str:
    return "".join(_B83[(value // 83 ** (length - 1 - i)) % 83] for i in range(length))


def _to_srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    return round((v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055) * 255)


def _sign_pow(value: float, exp: float) -> float:
    return math.copysign(abs(value) ** exp, value)


def blurhash(rgb: bytes, width: int, height: int, x_components: int = 4,
             y_components: int = 3) -> str:  # fmt: skip
    """The blurhash of an image given as packed 8-bit RGB rows (`width` x `height`).

    Callers pass a thumbnail (32 px or so): the cost is pixels x components.
    """
    if len(rgb) != width * height * 3 or not (1 <= x_components <= 9 and 1 <= y_components <= 9):
        raise ValueError("blurhash needs width*height RGB pixels and 1..9 components")
    linear = [_TO_LINEAR[b] for b in rgb]
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(x_components)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)]
             for j in range(y_components)]  # fmt: skip
    factors: list[tuple[float, float, float]] = []
    for j in range(y_components):
        for i in range(x_components):
            norm = (1 if i == 0 and j == 0 else 2) / (width * height)
            r = g = b = 0.0
            cx, cy = cos_x[i], cos_y[j]
            for y in range(height):
                row, by = y * width * 3, cy[y]
                for x in range(width):
                    basis = cx[x] * by
                    at = row + x * 3
                    r += basis * linear[at]
                    g += basis * linear[at + 1]
                    b += basis * linear[at + 2]
            factors.append((r * norm, g * norm, b * norm))
    dc, ac = factors[0], factors[1:]
    out = _base83((x_components - 1) + (y_components - 1) * 9, 1)
    if ac:
        actual_max = max(abs(c) for f in ac for c in f)
        quantised = max(0, min(82, math.floor(actual_max * 166 - 0.5)))
        max_value = (quantised + 1) / 166
        out += _base83(quantised, 1)
    else:
        max_value = 1.0
        out += _base83(0, 1)
    out += _base83((_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2]), 4)
    for f in ac:
        q = [max(0, min(18, math.floor(_sign_pow(c / max_value, 0.5) * 9 + 9.5))) for c in f]
        out += _base83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2)
    return out
