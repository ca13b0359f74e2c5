"""Custom emoji of other servers (`tag` entries of type `Emoji` in their posts), copied here.

A post names its emoji as `:shortcode:` in its text and carries each picture's URL in `tag`. The
worker copies them with the post's attachments (the `media.cache_remote` job), through the same
fetcher and address guard, cut off at EMOJI_SIZE_LIMIT, checked and re-encoded as a PNG still; a
domain whose media is rejected is never fetched from. One copy serves every post of that domain
using the shortcode (Mastodon keys remote emoji the same way: shortcode and domain).

The emoji of a remote account's name and bio are copied the same way with its avatar and header;
their copies are noted on the account's `emojis` (`cached_url`), kept across refreshes of the actor
while the picture stays the same.

Pages and apps show only copies made here: an emoji not (yet) copied stays `:shortcode:` text, so
a reader's browser or app never loads a picture from the other server.

Copies follow the rules of the other cached remote media (app.services.remote_media): dropped
after MEDIA_CACHE_RETENTION_DAYS by the daily cleanup and `herold media remove`, and made again
when a post names the emoji; forgotten when their domain's media come to be rejected or it is
suspended. Each drop is announced (EmojiCopiesChanged, AccountChanged), so that no kept rendering
names a file that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import String, cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select, tuple_

from app.activitypub.fetcher import Fetcher, FetchError
from app.context import AppContext
from app.models import Account, Post, RemoteEmoji
from app.models.base import utcnow
from app.services import events
from app.services.image_processing import EMOJI_SIZE_LIMIT, MediaInvalid, emoji_picture
from app.services.moderation import on_domain

log = logging.getLogger(__name__)

# Under the remote-media cache folder, so that `herold media usage` counts them with it.
EMOJI_FOLDER = "cache/emojis"
# Mastodon's shortcodes: letters, digits and underscores.
SHORTCODE_RE = re.compile(r"^[A-Za-z0-9_]{1,255}$")
# A picture that could not be copied is tried again after this long (or when its URL changes).
RETRY_FAILED_AFTER = timedelta(days=1)
# A post names at most this many (parse_emojis keeps 100; Mastodon's apps show far fewer).
MAX_EMOJIS_PER_POST = 50


@dataclass(frozen=True)
class ShownEmoji:
    """A custom emoji as pages and apps show it: from the copy here."""

    shortcode: str
    url: str
    static_url: str


def wanted_emojis(entries: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Shortcode → picture URL of a post's `emojis` (as parse_emojis stored them), the unusable left out."""
    wanted: dict[str, str] = {}
    for entry in entries:
        shortcode, url = entry.get("shortcode"), entry.get("url")
        if isinstance(shortcode, str) and SHORTCODE_RE.match(shortcode) and isinstance(url, str) and url:
            wanted.setdefault(shortcode, url)
    return dict(list(wanted.items())[:MAX_EMOJIS_PER_POST])


class RemoteEmojiCache:
    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.store = context.media

    async def cache(self, entries: Sequence[dict[str, Any]], domain: str) -> int:
        """Copy the emoji a post of `domain` names (those not copied from their current URL yet);
        how many were copied. One that cannot be had is left as text and tried again later."""
        wanted = wanted_emojis(entries)
        if not wanted:
            return 0
        async with self.context.sessions() as session:
            known = {
                emoji.shortcode: emoji
                for emoji in (
                    await session.scalars(
                        select(RemoteEmoji).where(
                            col(RemoteEmoji.domain) == domain, col(RemoteEmoji.shortcode).in_(list(wanted))
                        )
                    )
                ).all()
            }
        copied = 0
        retry_before = utcnow() - RETRY_FAILED_AFTER
        for shortcode, url in wanted.items():
            emoji = known.get(shortcode)
            if emoji is not None and emoji.cached_from == url:
                continue
            if (
                emoji is not None
                and emoji.image_url == url
                and emoji.failure
                and emoji.updated_at > retry_before
            ):
                continue
            key, failure = await self._copy(url, domain)
            if await self._record(domain, shortcode, url, key, failure):
                copied += key is not None
        return copied

    async def cache_profile(self, account: Account) -> None:
        """Copy the emoji of a remote account's name and bio, and note the copies on its row."""
        if account.domain is None or not account.emojis:
            return
        await self.cache(account.emojis, account.domain)
        async with self.context.sessions() as session:
            known = (
                await session.scalars(
                    select(RemoteEmoji).where(
                        col(RemoteEmoji.domain) == account.domain,
                        col(RemoteEmoji.shortcode).in_(list(wanted_emojis(account.emojis))),
                    )
                )
            ).all()
            copies = {emoji.shortcode: emoji.cached_url for emoji in known if emoji.cached_url}
            # A picture that could not be copied is noted as tried (`failed_from`), so that every
            # post of the account does not queue the copying again; the note goes with the next
            # refresh of the actor (keep_copies keeps copies only), which tries it once more.
            failed = {emoji.shortcode: emoji.image_url for emoji in known if emoji.failure}
            stored = await session.get(Account, account.id)
            if stored is None:
                return
            noted = [
                {**entry, "cached_url": copies[entry["shortcode"]]}
                if entry.get("shortcode") in copies
                else {**entry, "failed_from": entry["url"]}
                if entry.get("url") is not None
                and failed.get(str(entry.get("shortcode"))) == entry.get("url")
                else entry
                for entry in stored.emojis
            ]
            if noted != stored.emojis:
                stored.emojis = noted
                session.add(stored)
                # Kept API entities of the account show its emoji as text until they hear of it.
                events.announce(session, [events.AccountChanged(stored.id)])
                await session.commit()

    async def _copy(self, url: str, domain: str) -> tuple[str | None, str | None]:
        """The store key of a fresh copy of `url`, or why there is none."""
        policy = await self.context.domain_policy.current()
        if not policy.embeds_media(domain, url):
            return None, "media of this domain are rejected"
        scratch = self.store.scratch_dir() / f"emoji-{secrets.token_hex(16)}"
        try:
            final_url = await Fetcher(self.context).download(url, scratch, limit=EMOJI_SIZE_LIMIT)
            if not policy.embeds_media(domain, final_url):
                return None, "media of this domain are rejected"
            encoded = await self.context.background_cpu.run(_emoji_file, scratch)
        except (FetchError, MediaInvalid) as error:
            log.info("custom emoji %s of %s not cached: %s", url, domain, error)
            return None, str(error)[:1000]
        finally:
            await asyncio.to_thread(_unlink, scratch)
        key = self.store.new_key(EMOJI_FOLDER, "png")
        await self.store.put(key, encoded)
        return key, None

    async def _record(
        self, domain: str, shortcode: str, url: str, key: str | None, failure: str | None
    ) -> bool:
        """Keep the outcome on the emoji's row; the copy it replaces leaves the store. False when
        another worker recorded the same emoji meanwhile (this copy is then dropped).

        The last picture wins, per domain and shortcode (as Mastodon keys them): a new copy
        replaces the old one, and a new picture that could not be copied drops the old copy too,
        so that no post shows a picture its server no longer uses."""
        old_url = None
        async with self.context.sessions() as session:
            emoji = await session.scalar(
                select(RemoteEmoji).where(
                    col(RemoteEmoji.domain) == domain, col(RemoteEmoji.shortcode) == shortcode
                )
            )
            if emoji is None:
                emoji = RemoteEmoji(domain=domain, shortcode=shortcode, image_url=url)
            emoji.image_url = url
            emoji.updated_at = utcnow()
            emoji.failure = failure
            if key is not None:
                old_url = emoji.cached_url
                emoji.cached_url = self.store.url(key)
                emoji.cached_from = url
                emoji.cached_at = utcnow()
            elif emoji.cached_url is not None and emoji.cached_from != url:
                old_url = emoji.cached_url
                emoji.cached_url = emoji.cached_from = emoji.cached_at = None
            session.add(emoji)
            if old_url is not None:
                # Posts and profiles that showed the old copy (a file about to go) drop it.
                new = {(domain, shortcode): emoji.cached_url} if emoji.cached_url else {}
                changed = await _repoint_profiles(session, [domain], {old_url}, new, url)
                events.announce(
                    session,
                    [events.EmojiCopiesChanged((domain,)), *(events.AccountChanged(i) for i in changed)],
                )
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                await self.store.delete(key)
                return False
        await self.store.delete(self.store.key_of_url(old_url))
        return True

    async def remove_older_than(self, days: float) -> int:
        """Drop copies made more than `days` ago (the retention of cached remote media); the next
        post naming one has it copied again. How many were dropped."""
        cutoff = utcnow() - timedelta(days=days)
        return await self._drop(
            col(RemoteEmoji.cached_url).is_not(None), col(RemoteEmoji.cached_at) < cutoff, forget=False
        )

    async def remove_domain(self, domain: str) -> int:
        """Forget every emoji of `domain` and its subdomains, copies and all: its media came to be
        rejected, or it was suspended. How many copies were dropped."""
        return await self._drop(on_domain(col(RemoteEmoji.domain), domain), forget=True)

    async def _drop(self, *conditions: Any, forget: bool) -> int:
        async with self.context.sessions() as session:
            found = (await session.scalars(select(RemoteEmoji).where(*conditions))).all()
            if not found:
                return 0
            copies = {emoji.cached_url for emoji in found if emoji.cached_url}
            for emoji in found:
                if forget:
                    await session.delete(emoji)
                else:
                    emoji.cached_url = emoji.cached_from = emoji.cached_at = None
                    session.add(emoji)
            domains = sorted({emoji.domain for emoji in found})
            changed = await _repoint_profiles(session, domains, copies, {}, None)
            if copies:
                events.announce(
                    session,
                    [events.EmojiCopiesChanged(tuple(domains)), *(events.AccountChanged(i) for i in changed)],
                )
            await session.commit()
        await self.store.delete(*(self.store.key_of_url(url) for url in copies))
        return len(copies)


async def _repoint_profiles(
    session: AsyncSession,
    domains: Sequence[str],
    gone: set[str],
    new: dict[tuple[str, str], str],
    new_from: str | None,
) -> list[int]:
    """Remote accounts of `domains` whose name or bio emoji name a copy in `gone`: the entry
    points at the new copy (`new`, by domain and shortcode) when it names the picture that copy was
    made from (`new_from`), else it is shown as text until its account's next post has it copied
    again. The ids of the accounts changed."""
    accounts = (
        await session.scalars(
            select(Account).where(
                col(Account.domain).in_(list(domains)),
                # Only rows whose emoji name a copy at all (JSON as text: the same on both databases).
                cast(col(Account.emojis), String).contains("cached_url"),
            )
        )
    ).all()
    changed = []
    for account in accounts:
        entries = []
        for entry in account.emojis:
            if entry.get("cached_url") in gone:
                entry = {name: value for name, value in entry.items() if name != "cached_url"}
                replacement = new.get((str(account.domain), str(entry.get("shortcode"))))
                if replacement and entry.get("url") == new_from:
                    entry["cached_url"] = replacement
            entries.append(entry)
        if entries != account.emojis:
            account.emojis = entries
            session.add(account)
            changed.append(account.id)
    return changed


def profile_emojis(account: Account) -> list[ShownEmoji]:
    """The copied emoji of a remote account's name and bio (kept on its `emojis` as `cached_url`)."""
    return [
        ShownEmoji(entry["shortcode"], entry["cached_url"], entry["cached_url"])
        for entry in account.emojis
        if isinstance(entry.get("cached_url"), str) and isinstance(entry.get("shortcode"), str)
    ]


def keep_copies(old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """An actor's emoji as newly fetched, with the copies of those whose picture did not change."""
    copies = {
        (entry.get("shortcode"), entry.get("url")): entry["cached_url"]
        for entry in old
        if entry.get("cached_url")
    }
    return [
        {**entry, "cached_url": copies[key]}
        if (key := (entry.get("shortcode"), entry.get("url"))) in copies
        else dict(entry)
        for entry in new
    ]


async def shown_emojis(
    session: AsyncSession, posts: Iterable[tuple[Post, Account]]
) -> dict[int, list[ShownEmoji]]:
    """The copied emoji of each remote post (by post id), in the order the post names them: one query."""
    named = {
        post.id: (author.domain, wanted_emojis(post.emojis))
        for post, author in posts
        if author.domain is not None and post.emojis
    }
    pairs = {(domain, shortcode) for domain, wanted in named.values() for shortcode in wanted}
    if not pairs:
        return {}
    copies = {
        (emoji.domain, emoji.shortcode): emoji.cached_url
        for emoji in (
            await session.scalars(
                select(RemoteEmoji).where(
                    tuple_(col(RemoteEmoji.domain), col(RemoteEmoji.shortcode)).in_(list(pairs)),
                    col(RemoteEmoji.cached_url).is_not(None),
                )
            )
        ).all()
    }
    shown: dict[int, list[ShownEmoji]] = {}
    for post_id, (domain, wanted) in named.items():
        found = [
            ShownEmoji(shortcode, url, url)
            for shortcode in wanted
            if (url := copies.get((domain, shortcode))) is not None
        ]
        if found:
            shown[post_id] = found
    return shown


def _emoji_file(path: Path) -> bytes:
    return emoji_picture(path.read_bytes())


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


__all__ = [
    "EMOJI_FOLDER",
    "RemoteEmojiCache",
    "ShownEmoji",
    "keep_copies",
    "profile_emojis",
    "shown_emojis",
    "wanted_emojis",
]
