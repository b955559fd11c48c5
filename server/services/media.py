"""Media: uploads, their records and files, claims by posts and avatars, who may see a
file, and the sweep of what nobody uses.

An upload arrives as a temporary file (the handler streamed and counted it); a worker
process decodes it and writes renditions named by the keyed hash of their bytes; they
are registered in the engine and moved into storage. The record is then the uploader's,
unattached, until a post claims it (server.services.echoes) or it becomes an avatar.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from server.domain import media as rules
from server.domain.errors import Conflict, DomainError
from server.services.common import Clock, User, new_id
from server.services.imaging import Processed, Refusal, Rendition, make_avatar, process_upload
from server.services.media_pool import MediaPool
from server.store.blobs import BlobReader, BlobStore
from server.store.media import MediaStore

log = logging.getLogger(__name__)

UNATTACHED_TTL = 24 * 3600.0
# How long a dropped post's files stay: pages already open may still show it a while.
DROPPED_GRACE = 3600.0
SWEEP_BATCH = 100
# Seconds after which a leftover in the temporary folder is a dead process's.
STALE_TEMPORARY = 3600.0
# How long an upload waits for an earlier deletion of the same file to finish.
FILE_DELETION_WAIT = 5.0

CONTENT_TYPES = {"webp": "image/webp", "jpeg": "image/jpeg", "png": "image/png",
                 "gif": "image/gif", "mp4": "video/mp4", "webm": "video/webm"}  # fmt: skip


class MediaService:
    def __init__(self, store: MediaStore, blobs: BlobStore, pool: MediaPool, clock: Clock,
                 tmp_dir: Path) -> None:  # fmt: skip
        self.store = store
        self.blobs = blobs
        self.pool = pool
        self.clock = clock
        self.tmp_dir = tmp_dir
        self._key: bytes | None = None

    async def _secret(self) -> bytes:
        if self._key is None:
            self._key = await self.store.secret()
        return self._key

    # --- shape ---------------------------------------------------------------------------

    def wire(self, rec: dict[str, str]) -> dict[str, Any]:
        """A media item on the wire (SPEC "Media")."""
        item: dict[str, Any] = {
            "id": rec["id"], "type": rec["type"],
            "url": self.blobs.url(rec["large"]), "preview_url": self.blobs.url(rec["small"]),
            "width": int(rec["width"]), "height": int(rec["height"]),
            "blurhash": rec["blurhash"], "alt": rec.get("alt", ""),
        }  # fmt: skip
        if rec.get("duration"):
            item["duration"] = float(rec["duration"])
        return item

    def temp_path(self) -> Path:
        """A fresh path for an upload to stream into (under the data directory)."""
        return self.tmp_dir / f"upload-{new_id()}"

    # --- upload ----------------------------------------------------------------------------

    async def upload(self, user: User, source: Path, alt: str) -> dict[str, Any]:
        """Decode, store and register the upload at `source` (removed in any case)."""
        work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="work-", dir=self.tmp_dir))
        try:
            result = await self.pool.run(process_upload, str(source), str(work),
                                         await self._secret())  # fmt: skip
            if isinstance(result, Refusal):
                raise result.error()
            return await self._register(user, result, alt)
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def _register(self, user: User, done: Processed, alt: str) -> dict[str, Any]:
        now = self.clock()
        rec = {
            "id": new_id(), "owner": user.id, "type": done.type, "alt": alt,
            "width": str(done.large.width), "height": str(done.large.height),
            "blurhash": done.blurhash, "large": done.large.name, "small": done.small.name,
            "duration": "" if done.duration is None else str(done.duration),
            "post": "", "avatar": "", "created_ms": str(int(now * 1000)),
        }  # fmt: skip
        busy = await self.store.create(rec)
        try:
            await self._wait_deleted(busy)
            await self._put(done.large)
            await self._put(done.small)
        except BaseException:
            await self._forget([rec["id"]])
            raise
        return self.wire(rec)

    async def _put(self, rendition: Rendition) -> None:
        # A picture too small to resize has one file for both renditions: put once.
        if await asyncio.to_thread(os.path.exists, rendition.path):
            await self.blobs.put(rendition.name, rendition.path)

    async def _wait_deleted(self, names: list[str]) -> None:
        """Wait (bounded) until an earlier deletion of these files has finished, so that
        it cannot remove the copy about to be written."""
        if not names:
            return
        deadline = time.monotonic() + FILE_DELETION_WAIT
        while await self.store.deleting(names):
            if time.monotonic() > deadline:
                raise DomainError("media_busy", "try the upload again in a moment", "file")
            await asyncio.sleep(0.05)

    async def _forget(self, media_ids: list[str], *, owner: str = "",
                      unattached: bool = False) -> str:  # fmt: skip
        status, files = await self.store.forget(media_ids, owner=owner, unattached=unattached)
        for name in files:
            await self.blobs.delete(name)
        await self.store.file_deleted(files)
        return status

    # --- one item --------------------------------------------------------------------------

    async def _own(self, user: User, raw_id: object, field: str = "id") -> dict[str, str]:
        rec = await self.store.get(rules.check_media_id(raw_id, field))
        if rec is None or rec["owner"] != user.id:
            raise rules.media_not_found(field)
        return rec

    async def get(self, user: User, raw_id: object) -> dict[str, Any]:
        """The uploader's own media item (others see it inside the post that carries it)."""
        return self.wire(await self._own(user, raw_id))

    async def set_alt(self, user: User, raw_id: object, body: object) -> dict[str, Any]:
        """Change the alt text while the item is unattached (a post's media is the post's
        as published, like its text)."""
        if not isinstance(body, dict):
            raise DomainError("invalid_body", "request body must be a JSON object")
        alt = rules.validate_alt(body.get("alt"))
        rec = await self._own(user, raw_id)
        if rec.get("post") or rec.get("avatar") == "1":
            raise Conflict("media_attached", "this media is already part of a post or avatar")
        await self.store.set_alt(rec["id"], alt)
        rec["alt"] = alt
        return self.wire(rec)

    async def delete(self, user: User, raw_id: object) -> dict[str, Any]:
        media_id = rules.check_media_id(raw_id)
        status = await self._forget([media_id], owner=user.id, unattached=True)
        if status == "not_found":
            raise rules.media_not_found()
        if status == "attached":
            raise Conflict("media_attached", "only unattached media can be deleted; delete "
                                             "the post instead")  # fmt: skip
        return {"id": media_id, "deleted": True}

    # --- posts and avatars -------------------------------------------------------------------

    async def claim(self, author: User, post_id: str,
                    media_ids: tuple[str, ...]) -> list[dict[str, Any]]:  # fmt: skip
        """Attach the media to the post, all or none, in one engine script."""
        status, index, recs = await self.store.claim(author.id, post_id, media_ids)
        if status == "media_not_found":
            raise rules.media_not_found("media")
        if status == "media_attached":
            raise Conflict("media_attached", f"media {media_ids[index - 1]} is already "
                                             "attached", field="media")  # fmt: skip
        if status == "too_many_media":
            raise rules.video_alone()
        by_id = {rec["id"]: rec for rec in recs}
        return [self.wire(by_id[m]) for m in media_ids]

    async def release(self, post_id: str, media_ids: tuple[str, ...]) -> None:
        """Give back media claimed for a post that was not published after all."""
        await self.store.release(post_id, media_ids, int(self.clock() * 1000))

    async def avatar(self, user: User, raw_id: object) -> dict[str, Any]:
        """Make an unattached image of the member's their avatar: a centred square crop
        of it. Answers the avatar object the profile keeps ({id, url}); the URL names the
        member, so every post of theirs shows the avatar they have now, and its `v`
        changes with the picture so caches take the new one."""
        rec = await self._own(user, raw_id, "avatar")
        if rec["type"] != "image":
            raise DomainError("not_an_image", "an avatar is an image", field="avatar")
        source = await self.blobs.open(rec["large"])
        if source is None:
            raise rules.media_not_found("avatar")
        work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="work-", dir=self.tmp_dir))
        try:
            copy = work / "source"
            f = await asyncio.to_thread(open, copy, "wb")
            try:
                async with contextlib.aclosing(source.chunks(0, source.size)) as chunks:
                    async for chunk in chunks:
                        await asyncio.to_thread(f.write, chunk)
            finally:
                await asyncio.to_thread(f.close)
            square = await self.pool.run(make_avatar, str(copy), str(work),
                                         await self._secret())  # fmt: skip
            if isinstance(square, Refusal):
                raise square.error()
            await self.blobs.put(square.name, square.path)
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        status, _ = await self.store.set_avatar(user.id, rec["id"], square.name,
                                                int(self.clock() * 1000))  # fmt: skip
        if status != "ok" and not await self.store.users_of_file(square.name):
            await self.blobs.delete(square.name)  # nobody took it
        if status == "media_not_found":
            raise rules.media_not_found("avatar")
        if status == "media_attached":
            raise Conflict("media_attached", "this media is already part of a post",
                           field="avatar")  # fmt: skip
        if status == "not_an_image":
            raise DomainError("not_an_image", "an avatar is an image", field="avatar")
        url = f"/media/avatars/{user.handle}?v={square.name.partition('.')[0][:12]}"
        return {"id": rec["id"], "url": url}

    async def drop_avatar(self, user: User) -> None:
        await self.store.drop_avatar(user.id, int(self.clock() * 1000))

    # --- serving ---------------------------------------------------------------------------

    async def open_file(self, name: str) -> BlobReader | None:
        return await self.blobs.open(name)

    async def avatar_file(self, handle: str) -> str:
        """The file of the current avatar of the member `handle` ('' for none)."""
        return await self.store.avatar_file(handle.lower())

    async def may_see_file(
        self, viewer: User, name: str, can_see_post: Callable[[User, str], Awaitable[bool]]
    ) -> bool:
        """Whether the viewer may see the file `name`: an avatar (any member), part of a
        post the viewer may see (`can_see_post`: the echoes' rule), or their own upload
        not yet posted. Anything else looks as if it did not exist: a deleted post's
        media is gone at once for everyone, its author included, though the files wait
        out the sweep's grace period."""
        for use in await self.store.users_of_file(name):
            if use["avatar"] == "1":
                return True
            if use["post"]:
                if await can_see_post(viewer, use["post"]):
                    return True
            elif use["owner"] == viewer.id:
                return True
        return False

    # --- sweeping ------------------------------------------------------------------------

    async def sweep(self, unattached_ttl: float = UNATTACHED_TTL,
                    grace: float = DROPPED_GRACE) -> int:  # fmt: skip
        """Delete media unattached for longer than the TTL, and media dropped (its post
        deleted, or replaced as an avatar) longer ago than the grace period. Returns how
        many were deleted. Safe on several processes at once: each record is forgotten by
        one engine script, and its files deleted by whoever forgot their last user."""
        now_ms = int(self.clock() * 1000)
        pending_before = now_ms - int(unattached_ttl * 1000)
        dropped_before = now_ms - int(grace * 1000)
        pending, dropped = await self.store.due(pending_before, dropped_before, SWEEP_BATCH)
        await asyncio.to_thread(self._clear_stale_temporaries)
        swept = 0
        for media_ids, unattached in ((pending, True), (dropped, False)):
            for media_id in media_ids:
                status = await self._forget([media_id], unattached=unattached)
                if status == "not_found":
                    await self.store.unlist(media_id)
                swept += status == "ok"
        return swept

    def _clear_stale_temporaries(self) -> None:
        """Remove what a process that died mid-upload left in the temporary folder
        (anything an hour old: no upload or job runs that long)."""
        cutoff = time.time() - STALE_TEMPORARY
        for entry in self.tmp_dir.iterdir():
            with contextlib.suppress(OSError):
                if entry.lstat().st_mtime < cutoff:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink()

    async def run_sweeper(self, interval: float, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                for _ in range(20):  # a full batch: more may be due, within reason
                    if await self.sweep() < SWEEP_BATCH:
                        break
            except (RedisError, OSError) as exc:
                # The engine away for a while (restarting, failing over): one line, and
                # try again next round. A traceback here read as a crash in the logs.
                log.warning("media sweep: %s", exc)
            except Exception:
                log.exception("media sweep failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)
