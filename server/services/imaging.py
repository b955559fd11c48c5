"""Decoding uploads and writing their renditions: runs only in the media worker
processes (server.services.media_pool), never on the event loop.

Every function here takes file paths and returns plain picklable values: a `Processed`
upload, or a `Refusal` (a domain error by name, since exceptions with their own
constructor arguments do not cross a process boundary whole). Nothing of the source
file's metadata survives: renditions are made from pixels (or, for a video, from the
audio and video packets alone) into new files.

Pillow is used for images, PyAV (FFmpeg's libraries, shipped inside its wheel) for
videos: the demuxer is chosen by us from the container's signature, never probed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from server.domain import media as rules
from server.domain.errors import DomainError, Unprocessable
from server.domain.image_end import has_data_after_image

_ACCEPTED_FORMATS = list(rules.IMAGE_FORMATS)
_WEBP_QUALITY = 80
_JPEG_QUALITY = 85


@dataclass(frozen=True, slots=True)
class Rendition:
    path: str
    ext: str  # webp, jpeg, png, mp4, webm
    width: int
    height: int
    name: str = ""  # the file's name in storage: a keyed hash of its bytes, and ext


def file_name(path: str, ext: str, key: bytes) -> str:
    """HMAC-SHA-256 of the file's bytes under the server's secret: content-addressed,
    yet nobody without the secret can compute the name of a picture they hold."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            mac.update(chunk)
    return f"{mac.hexdigest()[:40]}.{ext}"


def _named(r: Rendition, key: bytes) -> Rendition:
    return Rendition(r.path, r.ext, r.width, r.height, file_name(r.path, r.ext, key))


@dataclass(frozen=True, slots=True)
class Processed:
    type: str  # image or video
    large: Rendition  # the file itself (a video's remux)
    small: Rendition  # the preview (a video's poster frame)
    blurhash: str
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: str  # the DomainError subclass: UnsupportedMedia, Unprocessable, PayloadTooLarge
    code: str
    message: str

    def error(self) -> DomainError:
        from server.domain import errors

        cls: type[DomainError] = getattr(errors, self.kind)
        return cls(self.code, self.message, field="file")


def _refusal(err: DomainError) -> Refusal:
    return Refusal(type(err).__name__, err.code, err.message)


def process_upload(src: str, work_dir: str, key: bytes) -> Processed | Refusal:
    """Decode the upload at `src`, write its renditions into `work_dir`, and name them
    with the keyed hash of their bytes."""
    result = _process_upload(src, work_dir)
    if isinstance(result, Refusal):
        return result
    return Processed(result.type, _named(result.large, key), _named(result.small, key),
                     result.blurhash, result.duration)  # fmt: skip


def _process_upload(src: str, work_dir: str) -> Processed | Refusal:
    try:
        with open(src, "rb") as f:
            head = f.read(64)
        size = os.path.getsize(src)
        if size == 0:
            return _refusal(DomainError("empty_file", "the file is empty", field="file"))
        container = rules.video_container(head)
        if container is not None:
            return _process_video(src, work_dir, container)
        if size > rules.MAX_IMAGE_BYTES:
            return _refusal(rules.too_large(rules.MAX_IMAGE_BYTES))
        return _process_image(src, work_dir)
    except DomainError as err:
        return _refusal(err)
    except MemoryError:
        return _refusal(rules.image_too_large("the file needs more memory to decode than an "
                                              "upload may take"))  # fmt: skip


def make_avatar(src: str, work_dir: str, key: bytes) -> Rendition | Refusal:
    """A square, centred crop of the image at `src` (a large rendition of ours), at most
    AVATAR_SIDE pixels a side."""
    from PIL import Image

    try:
        with Image.open(src, formats=_ACCEPTED_FORMATS) as im:
            im.load()
            frame = im.convert("RGBA" if _has_alpha(im) else "RGB")
        box = rules.square_crop(*frame.size)
        side = min(box[2] - box[0], rules.AVATAR_SIDE)
        square = frame.resize((side, side), Image.Resampling.LANCZOS, box=box)
        path = os.path.join(work_dir, "avatar.webp")
        square.save(path, "WEBP", quality=_WEBP_QUALITY)
        return _named(Rendition(path, "webp", side, side), key)
    except (OSError, ValueError, SyntaxError) as exc:
        return _refusal(Unprocessable("media_unreadable", f"the image cannot be read: {exc}",
                                    field="file"))  # fmt: skip


# --- images ---------------------------------------------------------------------------


def _process_image(src: str, work_dir: str) -> Processed | Refusal:
    from PIL import Image, ImageFile, UnidentifiedImageError

    with open(src, "rb") as f:
        data = f.read()  # at most MAX_IMAGE_BYTES (checked by the caller)
    if has_data_after_image(data):
        return _refusal(rules.unsupported("the file has data after the end of the image "
                                          "(a file that is also something else is not "
                                          "accepted)"))  # fmt: skip
    del data

    # Bombs: refused from the header below; Pillow's own warning (over MAX_PIXELS) is an
    # error too, and a damaged file is never "completed" with grey.
    Image.MAX_IMAGE_PIXELS = rules.MAX_PIXELS
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(src, formats=_ACCEPTED_FORMATS) as im:
                return _renditions(im, work_dir)
        except UnidentifiedImageError:
            return _refusal(rules.unsupported())
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            return _refusal(rules.image_too_large(
                f"the image has more than {rules.MAX_PIXELS // 1_000_000} megapixels"))
        except ValueError as exc:
            if "too large" in str(exc):  # a text chunk that inflates too far: a bomb
                return _refusal(rules.image_too_large(f"the image is a decompression bomb "
                                                      f"({exc})"))  # fmt: skip
            return _refusal(Unprocessable("media_unreadable", f"the image is damaged ({exc})",
                                          field="file"))  # fmt: skip
        except (OSError, SyntaxError, EOFError) as exc:
            # Truncated data, bad chunks, text chunks that inflate too far (Pillow caps
            # them: a zip bomb in a PNG's zTXt ends here), and the like.
            return _refusal(Unprocessable("media_unreadable",
                                        f"the image is damaged or incomplete ({exc})",
                                        field="file"))  # fmt: skip


def _has_alpha(im: Any) -> bool:
    return bool(im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info)


def _renditions(im: Any, work_dir: str) -> Processed | Refusal:
    width, height = im.size
    if width * height > rules.MAX_PIXELS:
        return _refusal(rules.image_too_large(
            f"the image is {width}x{height}; the limit is {rules.MAX_PIXELS // 1_000_000} "
            "megapixels"))  # fmt: skip
    source_format = im.format
    frames = getattr(im, "n_frames", 1) if getattr(im, "is_animated", False) else 1
    if frames > 1:
        if frames > rules.MAX_FRAMES or frames * width * height > rules.MAX_ANIMATION_PIXELS:
            return _refusal(rules.image_too_large(
                f"the animation has {frames} frames of {width}x{height}; too many pixels "
                "in all"))  # fmt: skip
        return _animated(im, work_dir)
    # A JPEG decodes at a fraction of its size when that is still large enough: a 12 MP
    # photo for a 2048 px rendition decodes at half the work.
    if source_format == "JPEG":
        im.draft(None, (rules.LARGE_SIDE, rules.LARGE_SIDE))
    im.load()
    frame = _normalised(im)
    large = _resized(frame, rules.LARGE_SIDE)
    small = _resized(large, rules.SMALL_SIDE)
    large_r = _save_still(large, work_dir, "large", source_format)
    small_r = _save_still(small, work_dir, "small", source_format)
    return Processed("image", large_r, small_r, placeholder(small))


def _normalised(im: Any) -> Any:
    """The image upright, in sRGB, as 8-bit RGB or RGBA, with no metadata attached."""
    from PIL import Image, ImageOps

    icc = im.info.get("icc_profile")
    exif = im.getexif()
    orientation = exif.get(0x0112, 1) if exif else 1
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grey: scale to 8 bits rather than clip everything above 255 to white.
        frame = im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    elif mode == "CMYK":
        frame = im.convert("RGB")
    elif mode == "1":
        frame = im.convert("L")
    else:
        frame = im
    if icc and frame.mode in ("RGB", "RGBA", "CMYK"):
        frame = _to_srgb(frame, icc)
    frame = frame.convert("RGBA" if _has_alpha(frame) else "RGB")
    if frame.mode == "RGBA" and frame.getchannel("A").getextrema() == (255, 255):
        frame = frame.convert("RGB")
    if orientation != 1:
        # exif_transpose on a copy that carries only the orientation: nothing else of the
        # source's EXIF is ever attached to what is saved.
        frame.getexif()[0x0112] = orientation
        frame = ImageOps.exif_transpose(frame)
    clean = Image.new(frame.mode, frame.size)
    clean.paste(frame)
    return clean


def _to_srgb(frame: Any, icc: bytes) -> Any:
    """Pixels converted from their embedded colour profile to sRGB (the profile itself is
    then dropped with the rest of the metadata)."""
    import io

    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        target = ImageCms.createProfile("sRGB")
        mode = "RGBA" if frame.mode == "RGBA" else "RGB"
        return ImageCms.profileToProfile(frame, source, target, outputMode=mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return frame  # a broken profile: keep the pixels as they are


def _resized(frame: Any, longest: int) -> Any:
    from PIL import Image

    size = rules.fit_within(frame.width, frame.height, longest)
    if size == frame.size:
        return frame
    # reducing_gap: a fast box reduction first, then Lanczos on the rest.
    return frame.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _save_still(frame: Any, work_dir: str, name: str, source_format: str | None) -> Rendition:
    """WebP, or the source's own format re-encoded where that came out smaller (flat
    graphics in PNG often do). Saved with no metadata: nothing is passed but pixels."""
    webp = os.path.join(work_dir, f"{name}.webp")
    frame.save(webp, "WEBP", quality=_WEBP_QUALITY, method=4)
    best = Rendition(webp, "webp", frame.width, frame.height)
    other: tuple[str, str, dict[str, Any]] | None = None
    if source_format == "JPEG" and frame.mode == "RGB":
        other = ("jpeg", "JPEG", {"quality": _JPEG_QUALITY, "optimize": True,
                                  "progressive": True})  # fmt: skip
    elif source_format in ("PNG", "GIF"):
        other = ("png", "PNG", {"optimize": False, "compress_level": 6})
    if other is not None:
        ext, fmt, options = other
        path = os.path.join(work_dir, f"{name}.{ext}")
        frame.save(path, fmt, **options)
        if os.path.getsize(path) < os.path.getsize(webp):
            os.unlink(webp)
            return Rendition(path, ext, frame.width, frame.height)
        os.unlink(path)
    return best


def _animated(im: Any, work_dir: str) -> Processed:
    """An animation stays an animation: every frame resized into an animated WebP."""
    from PIL import ImageSequence

    large_frames, small_frames, durations = [], [], []
    for frame in ImageSequence.Iterator(im):
        rgba = frame.convert("RGBA")
        large = _resized(rgba, rules.LARGE_SIDE)
        large_frames.append(large)
        small_frames.append(_resized(large, rules.SMALL_SIDE))
        durations.append(max(20, int(frame.info.get("duration", 100) or 100)))
    loop = int(im.info.get("loop", 0) or 0)
    renditions = []
    for name, frames in (("large", large_frames), ("small", small_frames)):
        path = os.path.join(work_dir, f"{name}.webp")
        frames[0].save(path, "WEBP", save_all=True, append_images=frames[1:],
                       duration=durations, loop=loop, quality=_WEBP_QUALITY, method=2)  # fmt: skip
        renditions.append(Rendition(path, "webp", frames[0].width, frames[0].height))
    return Processed("image", renditions[0], renditions[1],
                     placeholder(small_frames[0].convert("RGB")))  # fmt: skip


def placeholder(frame: Any) -> str:
    """The blurhash of an image, from a 32 px thumbnail (the cost is pixels x 12)."""
    from PIL import Image

    thumb = frame.convert("RGB")
    thumb.thumbnail((32, 32), Image.Resampling.BILINEAR)
    x_components = 4 if thumb.width >= thumb.height else 3
    y_components = 3 if thumb.width >= thumb.height else 4
    return rules.blurhash(thumb.tobytes(), thumb.width, thumb.height, x_components, y_components)


# --- videos ---------------------------------------------------------------------------

_DEMUXERS = {"mp4": "mp4", "webm": "matroska"}


def _process_video(src: str, work_dir: str, container: str) -> Processed | Refusal:
    import av

    try:
        with av.open(src, mode="r", format=_DEMUXERS[container]) as inp:
            probe, video, audio = _probe(inp, container)
            rules.check_video(probe)
            out_path = os.path.join(work_dir, f"large.{container}")
            _remux(inp, video, audio, out_path, container)
            inp.seek(0)
            poster = _poster(inp, video)
    except DomainError as err:
        return _refusal(err)
    except (av.FFmpegError, OSError, ValueError, StopIteration) as exc:
        return _refusal(Unprocessable("media_unreadable", f"the video cannot be read ({exc})",
                                    field="file"))  # fmt: skip
    if poster is None:
        return _refusal(Unprocessable("media_unreadable", "the video has no picture",
                                    field="file"))  # fmt: skip
    frame = _normalised(poster)
    small = _resized(frame, rules.SMALL_SIDE)
    small_r = _save_still(small, work_dir, "small", None)
    large = Rendition(out_path, container, probe.width, probe.height)
    return Processed("video", large, small_r, placeholder(small), round(probe.duration, 3))


def _probe(inp: Any, container: str) -> tuple[rules.VideoProbe, Any, Any]:
    videos = list(inp.streams.video)
    audios = list(inp.streams.audio)
    if len(videos) != 1:
        raise rules.unsupported("a video needs exactly one video track")
    if len(audios) > 1:
        raise rules.unsupported("a video may have at most one audio track")
    video, audio = videos[0], (audios[0] if audios else None)
    if any(s is not None and s.codec_context is None for s in (video, audio)):
        raise Unprocessable("media_unreadable", "the video's tracks cannot be read", "file")
    rate = video.average_rate or video.guessed_rate or Fraction(0)
    duration = _duration(inp, video, audio)
    probe = rules.VideoProbe(
        container=container,
        video_codec=_codec_name(video),
        audio_codec=_codec_name(audio) if audio is not None else None,
        width=int(video.codec_context.width or 0),
        height=int(video.codec_context.height or 0),
        fps=float(rate),
        duration=duration,
    )
    return probe, video, audio


def _codec_name(stream: Any) -> str:
    name = str(stream.codec_context.name or "")
    # FFmpeg's decoders may be libraries (libdav1d for AV1, libopus for Opus).
    return {"libdav1d": "av1", "libaom-av1": "av1", "libopus": "opus",
            "libvpx-vp9": "vp9"}.get(name, name)  # fmt: skip


def _duration(inp: Any, video: Any, audio: Any) -> float:
    """The longest of the container's and its tracks' stated lengths (a file cannot
    claim a short container length over long tracks)."""
    import av

    lengths = []
    if inp.duration is not None:
        lengths.append(inp.duration / av.time_base)
    for stream in (video, audio):
        if stream is not None and stream.duration is not None and stream.time_base:
            lengths.append(float(stream.duration * stream.time_base))
    return max(lengths) if lengths else float("nan")


def _remux(inp: Any, video: Any, audio: Any, out_path: str, container: str) -> None:
    """Copy the packets into a new file: no transcoding, no metadata, the index first.

    The packets themselves are measured too: a file whose timestamps run past the limit
    is refused whatever its header said.
    """
    import av

    options = {"fflags": "+bitexact"}
    if container == "mp4":
        options["movflags"] = "+faststart"
    with av.open(out_path, mode="w", format=container, options=options) as out:
        streams = {video.index: out.add_stream_from_template(video)}
        if audio is not None:
            streams[audio.index] = out.add_stream_from_template(audio)
        for stream in streams.values():
            stream.metadata.clear()
        selected = [video] + ([audio] if audio is not None else [])
        for packet in inp.demux(selected):
            if packet.dts is None:
                continue
            if packet.pts is not None and packet.time_base is not None:
                at = float(packet.pts * packet.time_base)
                if at > rules.MAX_VIDEO_SECONDS + 0.05:
                    raise Unprocessable("video_too_long", "the video is longer than "
                                      f"{rules.MAX_VIDEO_SECONDS:.0f} s", field="file")  # fmt: skip
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    del av


def _poster(inp: Any, video: Any) -> Any:
    """The first picture of the video, as a Pillow image (decoded, not transcoded)."""
    for frame in inp.decode(video):
        return frame.to_image()
    return None
