"""Where media files live: on disk under DATA_DIR/media, named by unguessable keys.

A key is a relative path such as `attachments/3f/3f9c…e1.jpg`; its URL is `/media/<key>` on this
server (app/web/media_files.py serves it with safe headers). The names carry 128 random bits, so
a file of a followers-only post cannot be found by counting. An S3-compatible store would be a
second class with the same methods; it is not built yet (files stay on disk).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from app.context import AppContext

# Extensions the store hands out, each with the one content type it is served as.
SERVED_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "mp4": "video/mp4",
    "mp3": "audio/mpeg",
}
MEDIA_URL_PREFIX = "/media"


def media_root(context: AppContext) -> Path:
    return context.settings.data_dir / "media"


@dataclass(frozen=True)
class StoreUsage:
    files: int
    bytes: int


class MediaStore:
    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.root = media_root(context)

    def new_key(self, folder: str, extension: str, *, token: str | None = None, suffix: str = "") -> str:
        if extension not in SERVED_TYPES:
            raise ValueError(f"no served type for .{extension}")
        token = token or secrets.token_hex(16)
        return f"{folder}/{token[:2]}/{token}{suffix}.{extension}"

    def url(self, key: str) -> str:
        return f"{self.context.urls.base}{MEDIA_URL_PREFIX}/{key}"

    def path(self, key: str) -> Path:
        resolved = (self.root / key).resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise ValueError("a media key outside the store")
        return resolved

    def key_of_url(self, url: str | None) -> str | None:
        prefix = f"{self.context.urls.base}{MEDIA_URL_PREFIX}/"
        if url and url.startswith(prefix):
            return url.removeprefix(prefix)
        return None

    async def put(self, key: str, data: bytes) -> str:
        await asyncio.to_thread(_write_atomically, self.path(key), data)
        return key

    async def put_file(self, key: str, source: Path) -> str:
        """Move `source` (a file of ours, e.g. ffmpeg's output) into the store under `key`."""
        await asyncio.to_thread(_move, source, self.path(key))
        return key

    async def delete(self, *keys: str | None) -> None:
        await asyncio.to_thread(self._delete, [key for key in keys if key])

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            try:
                self.path(key).unlink(missing_ok=True)
            except (OSError, ValueError):
                continue

    def scratch_dir(self) -> Path:
        """Where uploads wait for processing (same file system as the store, so moves are renames)."""
        directory = self.root / "tmp"
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    async def usage(self, folder: str) -> StoreUsage:
        return await asyncio.to_thread(_usage, self.root / folder)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + f".{secrets.token_hex(4)}.part")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))


def _usage(directory: Path) -> StoreUsage:
    files = 0
    total = 0
    if directory.is_dir():
        for path in directory.rglob("*"):
            if path.is_file():
                files += 1
                total += path.stat().st_size
    return StoreUsage(files, total)


__all__ = ["MEDIA_URL_PREFIX", "SERVED_TYPES", "MediaStore", "StoreUsage", "media_root"]
