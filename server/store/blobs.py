"""Where media files live: a small interface, and the disk behind it.

Files are immutable and content-addressed: a file's name is a keyed hash of its bytes
(HMAC-SHA-256 with a secret kept in the engine) plus its extension, so one picture
uploaded twice is stored once, and nobody holding a known picture can compute its name
to probe whether it was uploaded. Who may read a file is decided before it is opened
(server.services.media); this layer only stores bytes.

Disk layout: `{data_dir}/media/files/{name[:2]}/{name}` (256 folders, so no folder grows
past what a file system lists quickly), written to `{data_dir}/media/tmp/` first and
renamed into place, so a reader never sees half a file.

Another store (an S3-compatible bucket shared by several machines) implements the same
four calls: `put` uploads the finished file under its name, `open` returns its size and
a ranged reader (GetObject with a Range header), `delete` removes it, `url` stays
`/media/{name}` so visibility keeps being checked by the server (or, where media may be
public, answers a short-lived presigned URL to redirect to).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class BlobReader:
    """An opened file: its size, and its bytes `start`..`end` (exclusive) in chunks."""

    size: int
    path: Path

    async def chunks(self, start: int, end: int) -> AsyncGenerator[bytes, None]:
        f = await asyncio.to_thread(open, self.path, "rb")
        try:
            await asyncio.to_thread(f.seek, start)
            left = end - start
            while left > 0:
                data = await asyncio.to_thread(f.read, min(CHUNK, left))
                if not data:
                    return
                left -= len(data)
                yield data
        finally:
            await asyncio.to_thread(f.close)


class BlobStore(Protocol):
    """The four things media needs of its storage."""

    async def put(self, name: str, source: str) -> None:
        """Store the finished file at `source` as `name` (`source` is moved or copied)."""
        ...

    async def open(self, name: str) -> BlobReader | None:
        """The file `name`, or None if there is none."""
        ...

    async def delete(self, name: str) -> None:
        """Remove the file `name` (nothing if it is gone already)."""
        ...

    def url(self, name: str) -> str:
        """Where clients fetch it."""
        ...


class DiskBlobs:
    """Files under `{root}/files`, staged under `{root}/tmp` (the same file system)."""

    def __init__(self, root: Path) -> None:
        self.files = root / "files"
        self.tmp = root / "tmp"
        self.files.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        return self.files / name[:2] / name

    async def put(self, name: str, source: str) -> None:
        def move() -> None:
            target = self._path(name)
            target.parent.mkdir(exist_ok=True)
            # The same bytes may be there already (same name): replacing is harmless.
            os.replace(source, target)

        await asyncio.to_thread(move)

    async def open(self, name: str) -> BlobReader | None:
        path = self._path(name)
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None
        return BlobReader(size, path)

    async def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._path(name).unlink)

    def url(self, name: str) -> str:
        return f"/media/{name}"
