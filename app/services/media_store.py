"""Where media files live: on disk under DATA_DIR/media, or in an S3-compatible object store.

A key is a relative path such as `attachments/3f/3f9c…e1.jpg`, the same in both stores. The names
carry 128 random bits, so a file of a followers-only post cannot be found by counting, and they are
never reused, so every copy may be cached for a year.

- On disk (the default) a key's URL is `/media/<key>` on this server; app/web/media_files.py serves
  it with safe headers.
- In an object store (S3_BUCKET set) a key's URL is `S3_PUBLIC_URL/<key>`: browsers and other
  servers read files from the bucket (or the CDN in front of it) and never through Herold, which
  is what an object store is for. Every object is written with its one content type and the same
  cache lifetime as on disk. A bucket cannot send `nosniff` or a sandboxing CSP, but it is another
  origin than Herold's, which is what those headers protect, and it only ever holds files Herold
  re-encoded itself, in the allowlisted types.

Uploads waiting for processing stay on local disk in both cases (`scratch_dir`): ffmpeg and Pillow
read files, and the worker shares DATA_DIR with the web processes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings

log = logging.getLogger(__name__)

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
# Names are never reused, so a copy never goes stale: caches (and CDNs) may keep it for a year.
MEDIA_CACHE_CONTROL = "public, max-age=31536000, immutable"
SCRATCH_FOLDER = "tmp"
# DeleteObjects takes at most this many keys a call.
S3_DELETE_BATCH = 1000


def media_root(settings: Settings) -> Path:
    return settings.data_dir / "media"


class MediaStoreError(OSError):
    """A file could not be written to the store (disk full, object store unreachable or refusing).
    Not the sender's fault: the HTTP surfaces answer 503, and nothing of the upload is kept."""


@dataclass(frozen=True)
class StoreUsage:
    files: int
    bytes: int


class MediaStore:
    """What both stores share: keys, their URLs and the local scratch folder."""

    def __init__(self, settings: Settings, url_base: str) -> None:
        self.root = media_root(settings)
        self.url_base = url_base.rstrip("/")

    def new_key(self, folder: str, extension: str, *, token: str | None = None, suffix: str = "") -> str:
        if extension not in SERVED_TYPES:
            raise ValueError(f"no served type for .{extension}")
        token = token or secrets.token_hex(16)
        return f"{folder}/{token[:2]}/{token}{suffix}.{extension}"

    def url(self, key: str) -> str:
        return f"{self.url_base}/{key}"

    def key_of_url(self, url: str | None) -> str | None:
        """The key of a URL this store handed out; None for any other URL (a remote original, say)."""
        prefix = f"{self.url_base}/"
        if url and url.startswith(prefix):
            return url.removeprefix(prefix)
        return None

    def scratch_dir(self) -> Path:
        """Where uploads wait for processing (on the same file system as the disk store, so that
        moves into it are renames)."""
        directory = self.root / SCRATCH_FOLDER
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def scratch_path(self, name: str) -> Path:
        resolved = (self.scratch_dir() / name).resolve()
        if not resolved.is_relative_to(self.scratch_dir().resolve()):
            raise ValueError("a scratch file outside the scratch folder")
        return resolved

    def local_path(self, key: str) -> Path | None:
        """The file of `key` on this machine, when the store keeps files here."""
        return None

    async def put(self, key: str, data: bytes) -> str:
        raise NotImplementedError

    async def put_file(self, key: str, source: Path) -> str:
        """Move `source` (a file of ours, e.g. ffmpeg's output) into the store under `key`."""
        raise NotImplementedError

    async def delete(self, *keys: str | None) -> None:
        """Remove files; one that is already gone or cannot be removed is skipped (and logged)."""
        raise NotImplementedError

    async def usage(self, folder: str) -> StoreUsage:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class DiskMediaStore(MediaStore):
    def __init__(self, settings: Settings, base_url: str) -> None:
        super().__init__(settings, f"{base_url}{MEDIA_URL_PREFIX}")

    def local_path(self, key: str) -> Path:
        resolved = (self.root / key).resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise ValueError("a media key outside the store")
        return resolved

    async def put(self, key: str, data: bytes) -> str:
        try:
            await asyncio.to_thread(_write_atomically, self.local_path(key), data)
        except OSError as error:
            raise MediaStoreError(f"{key} could not be written: {error.strerror or error}") from None
        return key

    async def put_file(self, key: str, source: Path) -> str:
        try:
            await asyncio.to_thread(_move, source, self.local_path(key))
        except OSError as error:
            raise MediaStoreError(f"{key} could not be written: {error.strerror or error}") from None
        return key

    async def delete(self, *keys: str | None) -> None:
        await asyncio.to_thread(self._delete, [key for key in keys if key])

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            try:
                self.local_path(key).unlink(missing_ok=True)
            except (OSError, ValueError) as error:
                log.warning("media file %s not removed: %s", key, error)

    async def usage(self, folder: str) -> StoreUsage:
        return await asyncio.to_thread(_usage, self.root / folder)


class S3MediaStore(MediaStore):
    """Files as objects of one bucket, through boto3 (the AWS SDK, which speaks to every
    S3-compatible store). Its calls block, so each runs in a thread; its client is thread-safe."""

    def __init__(self, settings: Settings) -> None:
        # Imported here, only by an instance that uses an object store: boto3 and botocore add
        # some 23 MB to every process that imports them, and 0.1 s to every command's start.
        from botocore.config import Config

        super().__init__(settings, settings.s3_public_url)
        self.bucket = settings.s3_bucket
        self.acl = settings.s3_acl
        self._client_options: dict[str, Any] = {
            "region_name": settings.s3_region or None,
            "endpoint_url": settings.s3_endpoint or None,
            "aws_access_key_id": settings.s3_access_key_id or None,
            "aws_secret_access_key": settings.s3_secret_access_key or None,
            "config": Config(
                # Other stores than Amazon's mostly know buckets in the path, not in the host name.
                s3={"addressing_style": "path" if settings.s3_endpoint else "auto"},
                # Checksums only where the API demands them: several S3-compatible stores refuse
                # the newer default ones (CRC32 trailers) that botocore otherwise sends.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 4, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
            ),
        }
        self._client: Any = None
        # The first calls arrive in several threads at once: one client is built, not one each
        # (a second would be dropped with its connection pool still open).
        self._client_lock = threading.Lock()

    def client(self) -> Any:
        """Made on first use (in a worker thread: building it reads the SDK's API descriptions)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    import boto3

                    self._client = boto3.session.Session().client("s3", **self._client_options)
        return self._client

    def _object_headers(self, key: str) -> dict[str, str]:
        extension = key.rsplit(".", 1)[-1]
        headers = {"ContentType": SERVED_TYPES[extension], "CacheControl": MEDIA_CACHE_CONTROL}
        if self.acl:
            headers["ACL"] = self.acl
        return headers

    async def put(self, key: str, data: bytes) -> str:
        def write() -> None:
            self.client().put_object(Bucket=self.bucket, Key=key, Body=data, **self._object_headers(key))

        await self._call(write, key)
        return key

    async def put_file(self, key: str, source: Path) -> str:
        def write() -> None:
            # upload_file sends large files in parts, read from disk, never whole into memory.
            self.client().upload_file(str(source), self.bucket, key, ExtraArgs=self._object_headers(key))

        await self._call(write, key)
        await asyncio.to_thread(source.unlink, missing_ok=True)
        return key

    async def delete(self, *keys: str | None) -> None:
        wanted = [key for key in keys if key]
        for start in range(0, len(wanted), S3_DELETE_BATCH):
            batch = wanted[start : start + S3_DELETE_BATCH]

            def remove(batch: list[str] = batch) -> None:
                answer = self.client().delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
                )
                for error in answer.get("Errors", []):
                    log.warning("media object %s not removed: %s", error.get("Key"), error.get("Message"))

            try:
                await self._call(remove, batch[0])
            except MediaStoreError as error:
                log.warning("%s media objects not removed: %s", len(batch), error)

    async def usage(self, folder: str) -> StoreUsage:
        def count() -> StoreUsage:
            files = total = 0
            pages = self.client().get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=f"{folder}/"):
                for item in page.get("Contents", []):
                    files += 1
                    total += int(item.get("Size", 0))
            return StoreUsage(files, total)

        result: StoreUsage = await self._call(count, folder)
        return result

    async def aclose(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
            self._client = None

    async def _call(self, work: Any, key: str) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(work)
        except (BotoCoreError, ClientError) as error:
            raise MediaStoreError(f"the object store refused {key}: {error}") from None


def build_media_store(settings: Settings, base_url: str) -> MediaStore:
    """The store the settings choose: the object store when S3_BUCKET is set, else the disk."""
    if settings.media_in_object_store:
        return S3MediaStore(settings)
    return DiskMediaStore(settings, base_url)


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


__all__ = [
    "MEDIA_CACHE_CONTROL",
    "MEDIA_URL_PREFIX",
    "SERVED_TYPES",
    "DiskMediaStore",
    "MediaStore",
    "MediaStoreError",
    "S3MediaStore",
    "StoreUsage",
    "build_media_store",
    "media_root",
]
