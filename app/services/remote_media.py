"""Copies of other servers' media, kept here so that readers' browsers never fetch from them.

The attachments of a remote post that reaches a local timeline are fetched by the worker (a
`media.cache_remote` job queued with the post), through the one fetcher and its address guard,
cut off at the size limit, sniffed and re-encoded by the same pipeline as uploads, and served from
/media/cache/…; `url` and `preview_url` then point here and `remote_url` keeps the original. A
domain whose media is rejected is never fetched from. Copies older than the retention
(MEDIA_CACHE_RETENTION_DAYS) are dropped by the daily cleanup or `herold media remove`; the entity
then points at the original again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select

from app.activitypub.fetcher import Fetcher, FetchError
from app.context import AppContext
from app.models import Account, MediaAttachment, MediaState, Post
from app.models.base import utcnow
from app.services.image_processing import IMAGE_SIZE_LIMIT, MediaInvalid
from app.services.media import precheck, process_file, store_outcome
from app.services.media_store import MediaStore
from app.services.video_processing import VIDEO_SIZE_LIMIT

log = logging.getLogger(__name__)

CACHE_FOLDER = "cache"


class CacheLater(Exception):
    """The other server could not be reached or answered with a server error: try again later."""


@dataclass(frozen=True)
class CacheOutcome:
    cached: int
    refused: int


class RemoteMediaCache:
    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.store = MediaStore(context)

    async def cache_post(self, post_id: int) -> CacheOutcome:
        """Copy the attachments of one remote post here (those not copied yet)."""
        async with self.context.sessions() as session:
            post = await session.get(Post, post_id)
            author = await session.get(Account, post.account_id) if post is not None else None
            attachments = (
                await session.scalars(
                    select(MediaAttachment).where(
                        col(MediaAttachment.post_id) == post_id,
                        col(MediaAttachment.state) == MediaState.REMOTE,
                        col(MediaAttachment.remote_url).is_not(None),
                    )
                )
            ).all()
        if post is None or author is None or author.domain is None or post.deleted_at is not None:
            return CacheOutcome(0, 0)
        cached = refused = 0
        unavailable: list[str] = []
        for media in attachments:
            try:
                if await self.cache_one(media, author.domain):
                    cached += 1
                else:
                    refused += 1
            except CacheLater as error:
                unavailable.append(str(error))
        if unavailable:
            raise CacheLater("; ".join(unavailable))
        return CacheOutcome(cached, refused)

    async def cache_one(self, media: MediaAttachment, owner_domain: str) -> bool:
        """Fetch, check and store one attachment; False when it is refused (rejected domain, bad file)."""
        url = media.remote_url or ""
        policy = await self.context.domain_policy.current()
        if not policy.embeds_media(owner_domain, url):
            return False
        scratch = self.store.scratch_dir() / f"remote-{secrets.token_hex(16)}"
        limit = VIDEO_SIZE_LIMIT if media.media_type.startswith(("video/", "audio/")) else IMAGE_SIZE_LIMIT
        try:
            try:
                final_url = await Fetcher(self.context).download(url, scratch, limit=limit)
            except FetchError as error:
                if error.unreachable or (error.status is not None and error.status >= 500):
                    raise CacheLater(str(error)) from None
                await self._refused(media, str(error))
                return False
            if not policy.embeds_media(owner_domain, final_url):
                return False
            try:
                size = await asyncio.to_thread(lambda: scratch.stat().st_size)
                what = await asyncio.to_thread(precheck, scratch, size)
                outcome = await asyncio.to_thread(process_file, scratch, "image" if what == "image" else "av")
            except MediaInvalid as error:
                await self._refused(media, error.message)
                return False
            values = await store_outcome(self.store, outcome, CACHE_FOLDER)
        finally:
            await asyncio.to_thread(_unlink, scratch)
        values.update(cached_at=utcnow())
        # What the author's server said of it (the description, the declared size) stays.
        values.pop("processing_error", None)
        async with self.context.sessions() as session:
            stored = await session.get(MediaAttachment, media.id)
            if stored is None or stored.state != MediaState.REMOTE:
                await self.store.delete(values["file_path"], values.get("preview_path"))
                return False
            for name, value in values.items():
                setattr(stored, name, value)
            session.add(stored)
            await session.commit()
        return True

    async def _refused(self, media: MediaAttachment, reason: str) -> None:
        log.info("remote attachment %s not cached: %s", media.remote_url, reason)
        async with self.context.sessions() as session:
            await session.execute(
                update(MediaAttachment)
                .where(col(MediaAttachment.id) == media.id)
                .values(processing_error=reason[:1000])
            )
            await session.commit()

    async def remove_older_than(self, days: float) -> int:
        """Drop cached copies older than `days`; their entities point at the originals again."""
        cutoff = utcnow() - timedelta(days=days)
        removed = 0
        while True:
            async with self.context.sessions() as session:
                batch = (
                    await session.scalars(
                        select(MediaAttachment)
                        .where(
                            col(MediaAttachment.cached_at).is_not(None),
                            col(MediaAttachment.cached_at) < cutoff,
                        )
                        .limit(500)
                    )
                ).all()
                if not batch:
                    return removed
                keys = [key for media in batch for key in (media.file_path, media.preview_path) if key]
                await session.execute(
                    update(MediaAttachment)
                    .where(col(MediaAttachment.id).in_([media.id for media in batch]))
                    .values(
                        url=func.coalesce(MediaAttachment.remote_url, MediaAttachment.url),
                        preview_url=None,
                        file_path=None,
                        preview_path=None,
                        cached_at=None,
                        state=MediaState.REMOTE,
                        file_size=0,
                    )
                )
                await session.commit()
            await self.store.delete(*keys)
            removed += len(batch)

    async def usage(self) -> dict[str, Any]:
        """Files and bytes: uploads, cached remote copies, profile pictures."""
        found: dict[str, Any] = {}
        for folder in ("attachments", CACHE_FOLDER, "profiles"):
            usage = await self.store.usage(folder)
            found[folder] = {"files": usage.files, "bytes": usage.bytes}
        async with self.context.sessions() as session:
            found["remote_not_cached"] = int(
                await session.scalar(
                    select(func.count())
                    .select_from(MediaAttachment)
                    .where(
                        col(MediaAttachment.state) == MediaState.REMOTE,
                    )
                )
                or 0
            )
        return found


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


__all__ = ["CACHE_FOLDER", "CacheLater", "CacheOutcome", "RemoteMediaCache"]
