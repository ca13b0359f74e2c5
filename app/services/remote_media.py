"""Copies of other servers' media, kept here so that readers' browsers never fetch from them.

The attachments (and custom emoji, app.services.remote_emojis) of a remote post that reaches a local timeline are fetched by the worker (a
`media.cache_remote` job queued with the post), through the one fetcher and its address guard,
cut off at the size limit, sniffed and re-encoded by the same pipeline as uploads, and served from
/media/cache/…; `url` and `preview_url` then point here and `remote_url` keeps the original. A
domain whose media is rejected is never fetched from. Copies older than the retention
(MEDIA_CACHE_RETENTION_DAYS), custom emoji included, are dropped by the daily cleanup or `herold
media remove`; the entity then points at the original again. When a domain block comes to reject
a domain's media or suspends it, every copy of its media goes (the `media.clear_domain` job).
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

from sqlalchemy import func, or_, update
from sqlmodel import col, select

from app.activitypub.fetcher import Fetcher, FetchError
from app.context import AppContext
from app.models import Account, MediaAttachment, MediaState, Post
from app.models.base import utcnow
from app.services import events
from app.services.image_processing import (
    AVATAR_SIZE,
    HEADER_SIZE,
    IMAGE_SIZE_LIMIT,
    MediaInvalid,
    fit_picture,
)
from app.services.jobs import MEDIA_CLEANUP, ensure_queued, queue_job
from app.services.media import precheck, process_file, store_outcome, stored_keys
from app.services.media_store import SCRATCH_FOLDER
from app.services.moderation import on_domain
from app.services.remote_emojis import RemoteEmojiCache, wanted_emojis
from app.services.video_processing import VIDEO_SIZE_LIMIT

log = logging.getLogger(__name__)

CACHE_FOLDER = "cache"


class CacheLater(Exception):
    """The other server could not be reached or answered with a server error: try again later."""


@dataclass(frozen=True)
class CacheOutcome:
    cached: int
    refused: int


def has_files_to_copy(account: Account) -> bool:
    """Whether a remote account's avatar, header or name emoji are not copied here (from their
    current pictures): its next post reaching a local timeline has them copied."""
    if account.domain is None:
        return False
    pictures = any(
        getattr(account, f"{kind}_url")
        and getattr(account, f"{kind}_cached_from") != getattr(account, f"{kind}_url")
        for kind in ("avatar", "header")
    )
    # Only emoji the copier takes (wanted_emojis) and has not tried in vain (failed_from): one it
    # never copies would otherwise queue a job with every post of its author.
    copied = {
        entry.get("shortcode")
        for entry in account.emojis
        if entry.get("cached_url")
        or (entry.get("failed_from") and entry.get("failed_from") == entry.get("url"))
    }
    return pictures or any(shortcode not in copied for shortcode in wanted_emojis(account.emojis))


class RemoteMediaCache:
    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.store = context.media

    async def cache_post(self, post_id: int) -> CacheOutcome:
        """Copy the attachments and custom emoji of one remote post here (those not copied yet)."""
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
        await self.cache_pictures(author)
        if await RemoteEmojiCache(self.context).cache(post.emojis, author.domain):
            # The copies are committed; a rendering of the post kept before shows the emoji as text.
            self.context.events.deliver([events.PostCopiesChanged(post.id)])
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
        if cached:
            # What is cached must be cleaned up: the daily job exists from the first copy on.
            await schedule_cleanup(self.context)
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
                # Nobody waits for it: in the background threads, after requests (app.ops.background_cpu).
                outcome = await self.context.background_cpu.run(
                    process_file, scratch, "image" if what == "image" else "av"
                )
            except MediaInvalid as error:
                await self._refused(media, error.message)
                return False
            values = await store_outcome(self.store, outcome, f"{CACHE_FOLDER}/attachments")
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
            if stored.post_id is not None:
                events.announce(session, [events.PostCopiesChanged(stored.post_id)])
            await session.commit()
        return True

    async def cache_pictures(self, account: Account) -> int:
        """Copy a remote account's avatar and header here (when not copied from their current URL).
        A picture that cannot be had or fails the checks is simply not copied: pages then show
        the original, or a placeholder where its domain's media is rejected."""
        if account.domain is None:
            return 0
        policy = await self.context.domain_policy.current()
        copied = 0
        for kind, size in (("avatar", AVATAR_SIZE), ("header", HEADER_SIZE)):
            url = getattr(account, f"{kind}_url")
            if not url or getattr(account, f"{kind}_cached_from") == url:
                continue
            if not policy.embeds_media(account.domain, url):
                continue
            scratch = self.store.scratch_dir() / f"remote-{secrets.token_hex(16)}"
            try:
                final_url = await Fetcher(self.context).download(url, scratch, limit=IMAGE_SIZE_LIMIT)
                if not policy.embeds_media(account.domain, final_url):
                    continue
                encoded, extension = await self.context.background_cpu.run(_fit_file, scratch, size)
            except (FetchError, MediaInvalid) as error:
                log.info("the %s of %s was not cached: %s", kind, account.uri, error)
                if _for_good(error):
                    await self._note_uncopyable(account, kind, url)
                continue
            finally:
                await asyncio.to_thread(_unlink, scratch)
            key = await self.store.put(self.store.new_key(f"{CACHE_FOLDER}/{kind}s", extension), encoded)
            async with self.context.sessions() as session:
                stored = await session.get(Account, account.id)
                if stored is None:
                    await self.store.delete(key)
                    continue
                old = self.store.key_of_url(getattr(stored, f"{kind}_cached_url"))
                setattr(stored, f"{kind}_cached_url", self.store.url(key))
                setattr(stored, f"{kind}_cached_from", url)
                stored.pictures_cached_at = utcnow()
                session.add(stored)
                # Kept API entities name the old copy, which is deleted below.
                events.announce(session, [events.AccountChanged(stored.id)])
                await session.commit()
            await self.store.delete(old)
            copied += 1
        await RemoteEmojiCache(self.context).cache_profile(account)
        if copied:
            await schedule_cleanup(self.context)
        return copied

    async def _note_uncopyable(self, account: Account, kind: str, url: str) -> None:
        """A picture that will not become copyable (not a picture, refused by its server) is not
        fetched again for every post of its account: marked as tried, it is shown as the original,
        until the account names another one."""
        async with self.context.sessions() as session:
            stored = await session.get(Account, account.id)
            if stored is None or getattr(stored, f"{kind}_url") != url:
                return
            old = self.store.key_of_url(getattr(stored, f"{kind}_cached_url"))
            setattr(stored, f"{kind}_cached_url", None)
            setattr(stored, f"{kind}_cached_from", url)
            session.add(stored)
            if old is not None:  # kept API entities name the copy deleted below
                events.announce(session, [events.AccountChanged(stored.id)])
            await session.commit()
        await self.store.delete(old)

    async def remove_pictures_older_than(self, days: float, *, avatars: bool, headers: bool) -> int:
        """Drop copies of remote avatars and/or headers made more than `days` ago."""
        cutoff = utcnow() - timedelta(days=days)
        return await self._remove_pictures(
            col(Account.domain).is_not(None),
            col(Account.pictures_cached_at).is_not(None),
            col(Account.pictures_cached_at) < cutoff,
            avatars=avatars,
            headers=headers,
        )

    async def _remove_pictures(self, *conditions: Any, avatars: bool, headers: bool) -> int:
        kinds = [kind for kind, wanted in (("avatar", avatars), ("header", headers)) if wanted]
        removed = 0
        async with self.context.sessions() as session:
            accounts = (await session.scalars(select(Account).where(*conditions))).all()
            keys: list[str | None] = []
            for account in accounts:
                for kind in kinds:
                    url = getattr(account, f"{kind}_cached_url")
                    if url:
                        keys.append(self.store.key_of_url(url))
                        setattr(account, f"{kind}_cached_url", None)
                        setattr(account, f"{kind}_cached_from", None)
                        removed += 1
                if not account.avatar_cached_url and not account.header_cached_url:
                    account.pictures_cached_at = None
                session.add(account)
                events.announce(session, [events.AccountChanged(account.id)])
            await session.commit()
        await self.store.delete(*keys)
        return removed

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
        return await self._uncache(col(MediaAttachment.cached_at) < cutoff)

    async def remove_domain(self, domain: str) -> int:
        """Drop every copy made of `domain`'s media (and its subdomains'): the attachments of its
        accounts' posts, their avatars and headers, its custom emoji. Its media came to be
        rejected, or it was suspended (Mastodon's ClearDomainMediaService). How many files went."""
        on_it = on_domain(col(Account.domain), domain)
        removed = await self._uncache(col(MediaAttachment.account_id).in_(select(Account.id).where(on_it)))
        removed += await self._remove_pictures(
            on_it,
            or_(col(Account.avatar_cached_url).is_not(None), col(Account.header_cached_url).is_not(None)),
            avatars=True,
            headers=True,
        )
        return removed + await RemoteEmojiCache(self.context).remove_domain(domain)

    async def _uncache(self, condition: Any) -> int:
        removed = 0
        while True:
            async with self.context.sessions() as session:
                batch = (
                    await session.scalars(
                        select(MediaAttachment)
                        .where(col(MediaAttachment.cached_at).is_not(None), condition)
                        .limit(500)
                    )
                ).all()
                if not batch:
                    return removed
                keys = stored_keys(batch)
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
                post_ids = {media.post_id for media in batch if media.post_id is not None}
                events.announce(session, [events.PostCopiesChanged(post_id) for post_id in sorted(post_ids)])
                await session.commit()
            await self.store.delete(*keys)
            removed += len(batch)

    async def usage(self) -> dict[str, Any]:
        """Files and bytes: uploads, cached remote copies, profile pictures."""
        found: dict[str, Any] = {}
        for folder in (
            "attachments",
            CACHE_FOLDER,
            f"{CACHE_FOLDER}/avatars",
            f"{CACHE_FOLDER}/headers",
            f"{CACHE_FOLDER}/emojis",
            "profiles",
        ):
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


CLEANUP_EVERY = timedelta(days=1)
FIRST_CLEANUP_DELAY = timedelta(hours=1)


async def schedule_cleanup(context: AppContext, *, after: timedelta = FIRST_CLEANUP_DELAY) -> None:
    """Make sure one media.cleanup job is queued (called whenever remote media was cached)."""
    await ensure_queued(context, MEDIA_CLEANUP, after=after)


async def run_cleanup(context: AppContext) -> int:
    """The daily run: drop copies older than MEDIA_CACHE_RETENTION_DAYS, then queue tomorrow's."""
    retention = context.settings.media_cache_retention_days
    removed = await RemoteMediaCache(context).remove_older_than(retention)
    removed += await RemoteEmojiCache(context).remove_older_than(retention)
    removed += await remove_unattached_uploads(context)
    async with context.sessions() as session:
        queue_job(context, session, MEDIA_CLEANUP, {}, run_at=utcnow() + CLEANUP_EVERY)
        await session.commit()
    if removed:
        log.info(
            "dropped %s cached remote media files older than %s days",
            removed,
            context.settings.media_cache_retention_days,
        )
    return removed


# Uploads never attached to a post are dropped after a day, as Mastodon does.
UNATTACHED_UPLOAD_LIFETIME = timedelta(days=1)


async def clear_domain(context: AppContext, domain: str) -> int:
    """The `media.clear_domain` job, queued when a domain block comes to reject media or suspend."""
    removed = await RemoteMediaCache(context).remove_domain(domain)
    if removed:
        log.info("dropped %s cached copies of media of %s (domain block)", removed, domain)
    return removed


async def remove_unattached_uploads(context: AppContext) -> int:
    store = context.media
    cutoff = utcnow() - UNATTACHED_UPLOAD_LIFETIME
    async with context.sessions() as session:
        stale = (
            await session.scalars(
                select(MediaAttachment).where(
                    col(MediaAttachment.post_id).is_(None),
                    col(MediaAttachment.remote_url).is_(None),
                    col(MediaAttachment.created_at) < cutoff,
                )
            )
        ).all()
        keys = stored_keys(stale)
        waiting = [
            media.upload_path.removeprefix(f"{SCRATCH_FOLDER}/") for media in stale if media.upload_path
        ]
        for media in stale:
            await session.delete(media)
        await session.commit()
    await store.delete(*keys)
    for name in waiting:
        with contextlib.suppress(ValueError):
            await asyncio.to_thread(_unlink, store.scratch_path(name))
    return len(stale)


def _for_good(error: Exception) -> bool:
    """Whether fetching or checking a file failed in a way that trying again will not change."""
    if isinstance(error, FetchError):
        return error.unreachable is None and error.status is not None and 400 <= error.status < 500
    return True


def _fit_file(path: Path, size: tuple[int, int]) -> tuple[bytes, str]:
    return fit_picture(path.read_bytes(), size)


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


__all__ = [
    "CACHE_FOLDER",
    "CacheLater",
    "CacheOutcome",
    "RemoteMediaCache",
    "clear_domain",
    "has_files_to_copy",
    "run_cleanup",
    "schedule_cleanup",
]
