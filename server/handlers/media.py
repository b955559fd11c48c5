"""Media over HTTP: the streamed upload, the uploader's items, and the files themselves.

The upload is read part by part and chunk by chunk into a temporary file, counted as it
arrives: the limit holds whatever Content-Length claimed (aiohttp's client_max_size
guards `read()`, not a streamed body), and an upload holds at most one buffer in memory.
The temporary file is removed however the request ends, a client vanishing mid-upload
included.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from pathlib import Path

from aiohttp import BodyPartReader, web

from server.domain import media as rules
from server.domain.errors import DomainError
from server.handlers.common import current_user, json_response, read_json, token_of
from server.handlers.security import body_types
from server.services.container import FEATURES, SERVICES
from server.services.media import CONTENT_TYPES, MediaService

routes = web.RouteTableDef()

READ_CHUNK = 64 * 1024
# Written to disk a buffer at a time, off the event loop.
WRITE_BUFFER = 1024 * 1024
# The form's overhead on top of the file (boundaries, part headers, alt text).
FORM_OVERHEAD = 64 * 1024
MAX_PARTS = 4
FILE_NAME = re.compile(r"[0-9a-f]{40}\.(webp|jpeg|png|gif|mp4|webm)")
# Files never change (their name is the hash of their bytes): cached for a year, but
# privately, since who may see one is decided per member.
CACHE_CONTROL = "private, max-age=31536000, immutable"


def _media(request: web.Request) -> MediaService:
    media: MediaService = request.app[FEATURES].media
    return media


async def _stream_file(part: BodyPartReader, target: Path) -> None:
    """Copy the part into `target`, refusing it (413) the moment it passes its limit.

    Which limit applies (16 MB for an image, 100 MB for a video) is judged from the
    first bytes; what the file is, the decoder decides later.
    """
    limit = rules.MAX_VIDEO_BYTES
    size = 0
    head = b""
    buffer = bytearray()
    with open(target, "wb") as f:  # noqa: ASYNC230 - opening is instant; writes go off-loop
        while chunk := await part.read_chunk(READ_CHUNK):
            if len(head) < 16:
                head += chunk[: 16 - len(head)]
                limit = rules.upload_limit(head)
            size += len(chunk)
            if size > limit:
                raise rules.too_large(limit)
            buffer += chunk
            if len(buffer) >= WRITE_BUFFER:
                await asyncio.to_thread(f.write, bytes(buffer))
                buffer.clear()
        if buffer:
            await asyncio.to_thread(f.write, bytes(buffer))


async def _small_text(part: BodyPartReader, limit: int, field: str) -> str:
    raw = bytearray()
    while chunk := await part.read_chunk(READ_CHUNK):
        raw += chunk
        if len(raw) > limit:
            message = f"{field} is limited to {rules.MAX_ALT} characters"
            raise DomainError(f"{field}_too_long", message, field)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DomainError(f"invalid_{field}", f"{field} must be UTF-8 text", field) from None


@routes.post("/api/media")
@body_types("multipart/form-data")  # read here, streamed; the origin checks still apply
async def upload(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    media = _media(request)
    user = current_user(request)
    if (request.content_length or 0) > rules.MAX_VIDEO_BYTES + FORM_OVERHEAD:
        raise rules.too_large(rules.MAX_VIDEO_BYTES)
    if request.content_type != "multipart/form-data":
        raise DomainError("invalid_body", "send the file as multipart/form-data (field file)")
    await svc.limit("uploads", user.id)
    target = media.temp_path()
    try:
        try:
            alt, has_file = await _read_form(request, target)
        except ValueError as exc:  # aiohttp's multipart reader on a malformed body
            raise DomainError("invalid_multipart", f"the form cannot be read ({exc})") from None
        if not has_file:
            raise DomainError("file_required", "no file was sent (field file)", field="file")
        alt_text = rules.validate_alt(alt)
        return json_response(await media.upload(user, target, alt_text), status=201)
    finally:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, target)


async def _read_form(request: web.Request, target: Path) -> tuple[object, bool]:
    """Read the form: the file part streamed into `target`, the alt part as text.
    Returns (alt or None, whether a file came)."""
    reader = await request.multipart()
    alt: object = None
    has_file = False
    for _ in range(MAX_PARTS + 1):
        part = await reader.next()
        if part is None:
            return alt, has_file
        if not isinstance(part, BodyPartReader):
            raise DomainError("invalid_body", "nested multipart bodies are not accepted")
        if part.name == "file" and not has_file:
            has_file = True
            await _stream_file(part, target)
        elif part.name == "alt" and alt is None:
            # 1,500 characters of at most 4 bytes each, and some spare.
            alt = await _small_text(part, rules.MAX_ALT * 4 + 64, "alt")
        else:
            raise DomainError("unknown_field", f"unexpected form field {part.name!r}; "
                              "send file and alt", field=part.name or None)  # fmt: skip
    raise DomainError("invalid_body", "too many form fields; send file and alt")


@routes.get("/api/media/{id}")
async def get_media(request: web.Request) -> web.Response:
    return json_response(await _media(request).get(current_user(request),
                                                   request.match_info["id"]))  # fmt: skip


@routes.patch("/api/media/{id}")
async def patch_media(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await read_json(request)
    return json_response(await _media(request).set_alt(user, request.match_info["id"], body))


@routes.delete("/api/media/{id}")
async def delete_media(request: web.Request) -> web.Response:
    return json_response(await _media(request).delete(current_user(request),
                                                      request.match_info["id"]))  # fmt: skip


def _not_found() -> web.Response:
    return json_response({"error": {"code": "not_found", "message": "no such file"}},
                         status=404, headers={"X-Content-Type-Options": "nosniff"})  # fmt: skip


def _byte_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(start, end exclusive) of a single `bytes=` range; None to send the whole file
    (no range, or several: a full answer is always allowed); False if unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()):
        return None
    if len(first) > 18 or len(last) > 18:
        return False
    if not first:  # the last N bytes
        n = int(last)
        return (max(0, size - n), size) if n > 0 and size > 0 else False
    start = int(first)
    end = min(size, int(last) + 1) if last.isdigit() else size
    if start >= size or end <= start:
        return False
    return start, end


@routes.get("/media/avatars/{handle}")
async def serve_avatar(request: web.Request) -> web.StreamResponse:
    """A member's current avatar, to any signed-in member (404 without one). Cached a
    day: the URL's `v` changes when the picture does."""
    svc = request.app[SERVICES]
    media = _media(request)
    handle = request.match_info["handle"]
    viewer = await svc.accounts.authenticate(token_of(request))
    if viewer is None or len(handle) > 64:
        return _not_found()
    name = await media.avatar_file(handle)
    if not name:
        return _not_found()
    return await _send_file(request, media, name, "private, max-age=86400")


@routes.get("/media/{name}")
async def serve_file(request: web.Request) -> web.StreamResponse:
    """A media file, to a signed-in member who may see it; 404 to anyone else (as if it
    did not exist). Immutable, with ETag/304 and single ranges (206)."""
    name = request.match_info["name"]
    if not FILE_NAME.fullmatch(name):
        return _not_found()
    svc = request.app[SERVICES]
    media = _media(request)
    viewer = await svc.accounts.authenticate(token_of(request))
    can_see_post = request.app[FEATURES].echoes.can_see
    if viewer is None or not await media.may_see_file(viewer, name, can_see_post):
        return _not_found()
    return await _send_file(request, media, name, CACHE_CONTROL)


async def _send_file(request: web.Request, media: MediaService, name: str,
                     cache_control: str) -> web.StreamResponse:  # fmt: skip
    etag = f'"{name.partition(".")[0]}"'
    headers = {
        "Content-Type": CONTENT_TYPES[name.rpartition(".")[2]],
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cache-Control": cache_control,
        "ETag": etag,
        "Accept-Ranges": "bytes",
    }
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers=headers)
    blob = await media.open_file(name)
    if blob is None:
        return _not_found()
    start, end, status = 0, blob.size, 200
    wanted = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if wanted and (if_range is None or if_range.strip() == etag):
        chosen = _byte_range(wanted, blob.size)
        if chosen is False:
            headers["Content-Range"] = f"bytes */{blob.size}"
            return web.Response(status=416, headers=headers)
        if isinstance(chosen, tuple):
            start, end = chosen
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = end - start
    await response.prepare(request)
    if request.method != "HEAD":
        async with contextlib.aclosing(blob.chunks(start, end)) as chunks:
            async for chunk in chunks:
                await response.write(chunk)
    await response.write_eof()
    return response
