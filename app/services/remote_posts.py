"""Posts from other servers: kept when they matter here, then edited, deleted, voted on and pinned.

A remote post matters when a local account follows its author, is mentioned or addressed in it,
or is being replied to. Keeping it means the post with its mentions of local accounts, hashtags,
media metadata and poll; a place in the home timeline of each local follower (of each addressed
local account for a direct message); and mention and reply notifications.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import col, select

from app.activitypub.parsers import NoteData, is_public
from app.context import AppContext
from app.models import (
    Account,
    MediaAttachment,
    Mention,
    NotificationType,
    Pin,
    Poll,
    PollVote,
    Post,
    PostEdit,
    PostTag,
    TimelineEntry,
    Visibility,
)
from app.models.base import new_id, utcnow
from app.services import events
from app.services.batch_writes import PostRows, WriteBatch, new_row
from app.services.hashtags import tag_follower_ids
from app.services.jobs import REMOTE_MEDIA_CACHE, queue_job_in
from app.services.media import stored_keys_of_posts
from app.services.moderation import is_silenced
from app.services.notifications import (
    SenderReach,
    announces_to_followers,
    notification_row,
    notify,
    sender_reach,
)
from app.services.read_cache import ReadCache
from app.services.remote_media import has_files_to_copy
from app.services.timelines import (
    LocalFollower,
    hidden_from,
    hidden_from_each,
    insert_ignoring_duplicates,
    local_follower_ids,
    local_followers_of,
    tag_post,
)

T = TypeVar("T")

# A post dated further ahead than this is taken to have been written now (clocks drift).
MAX_FUTURE_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Relevance:
    # Local accounts that follow the author.
    followers: frozenset[int]
    # Local accounts mentioned or addressed in the post.
    local_recipients: list[Account]
    parent: Post | None

    @property
    def relevant(self) -> bool:
        return (
            bool(self.followers)
            or bool(self.local_recipients)
            or (self.parent is not None and self.parent.local)
        )


# The cached answers about who here follows an author (RemotePostService.read_ahead fills them).
FOLLOWER_READS = ("followers", "boost-followers", "notified-followers", "language-followers")


def forget_followers(cache: ReadCache, account_id: int) -> None:
    """Drop what `cache` knows of who follows `account_id`: a follow of it just began or ended,
    and a post of it that follows in the next seconds must reach the new follower."""
    for key in FOLLOWER_READS:
        cache.forget((key, account_id))


class RemotePostService:
    """`cache` (the inbox worker's) lets repeated reads about the same authors skip the database."""

    def __init__(self, context: AppContext, cache: ReadCache | None = None) -> None:
        self.context = context
        self.cache = cache

    async def _cached(self, key: tuple[object, ...], load: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def read() -> T:
            async with self.context.sessions() as session:
                return await load(session)

        return await self.cache.get(key, read) if self.cache is not None else await read()

    async def find(self, uri: str) -> Post | None:
        async with self.context.sessions() as session:
            return await session.scalar(select(Post).where(col(Post.uri) == uri))

    async def find_cached(self, uri: str) -> Post | None:
        """`find` through the cache: for what is reacted to (liked, reacted), where a post deleted
        a moment ago only costs the reaction a retry."""

        async def load(session: AsyncSession) -> Post | None:
            return await session.scalar(select(Post).where(col(Post.uri) == uri))

        return await self._cached(("post", uri), load)

    async def followers(self, account: Account) -> frozenset[int]:
        """Local accounts following `account`."""

        async def load(session: AsyncSession) -> frozenset[int]:
            return frozenset(await local_follower_ids(session, account))

        return await self._cached(("followers", account.id), load)

    async def tag_followers(self, names: Sequence[str]) -> frozenset[int]:
        """Local accounts following any of the hashtags `names`."""
        key = tuple(sorted({name.lower() for name in names}))

        async def load(session: AsyncSession) -> frozenset[int]:
            return frozenset(await tag_follower_ids(session, key))

        return await self._cached(("tag_followers", key), load)

    async def refusing_language(self, account: Account, language: str | None) -> frozenset[int]:
        """Local followers of `account` who follow it only in other languages than `language`."""
        if not language:
            return frozenset()

        async def load(session: AsyncSession) -> tuple[LocalFollower, ...]:
            followers = (await local_followers_of(session, [account.id]))[account.id]
            return tuple(follower for follower in followers if follower.languages)

        choosy = await self._cached(("language-followers", account.id), load)
        return frozenset(follower.account_id for follower in choosy if follower.refuses(language))

    async def boost_followers(self, account: Account) -> frozenset[int]:
        """Local accounts following `account` that take its boosts at home."""

        async def load(session: AsyncSession) -> frozenset[int]:
            return frozenset(await local_follower_ids(session, account, boosts=True))

        return await self._cached(("boost-followers", account.id), load)

    async def notified_followers(self, account: Account) -> frozenset[int]:
        """Local accounts following `account` that asked to be told of each of its posts."""

        async def load(session: AsyncSession) -> frozenset[int]:
            return frozenset(await local_follower_ids(session, account, notify=True))

        return await self._cached(("notified-followers", account.id), load)

    async def read_ahead(self, authors: Iterable[Account]) -> None:
        """Read who follows and who hides each of `authors` in a few queries for all of them, into
        the cache that `followers`, `boost_followers`, `notified_followers`, `hidden` and `reach`
        answer from (the inbox worker does this for every batch: a query per author and question
        would cost more than the rest of its work). Without a cache there is nowhere to keep the
        answers, and nothing is read."""
        cache = self.cache
        if cache is None:
            return
        keys = (*FOLLOWER_READS, "hidden", "hidden-notifications")
        unknown = {
            author.id: author for author in authors if not all(cache.fresh((key, author.id)) for key in keys)
        }
        if not unknown:
            return
        async with self.context.sessions() as session:
            followers = await local_followers_of(session, list(unknown))
            hidden = await hidden_from_each(session, list(unknown.values()))
            hidden_notifications = await hidden_from_each(session, list(unknown.values()), notifications=True)
        for account_id in unknown:
            following = followers[account_id]
            cache.put(("followers", account_id), frozenset(f.account_id for f in following))
            cache.put(("boost-followers", account_id), frozenset(f.account_id for f in following if f.boosts))
            cache.put(
                ("notified-followers", account_id), frozenset(f.account_id for f in following if f.notify)
            )
            cache.put(("language-followers", account_id), tuple(f for f in following if f.languages))
            cache.put(("hidden", account_id), frozenset(hidden[account_id]))
            cache.put(("hidden-notifications", account_id), frozenset(hidden_notifications[account_id]))

    async def has_local_followers(self, account: Account) -> bool:
        return bool(await self.followers(account))

    async def hidden(self, author: Account) -> frozenset[int]:
        """Local accounts that block or mute `author` (or its domain)."""

        async def load(session: AsyncSession) -> frozenset[int]:
            return frozenset(await hidden_from(session, author))

        return await self._cached(("hidden", author.id), load)

    async def reach(self, sender: Account) -> SenderReach:
        """Which local accounts `sender` may notify (see SenderReach)."""

        async def load(session: AsyncSession) -> frozenset[int]:
            return frozenset(await hidden_from(session, sender, notifications=True))

        hidden = await self._cached(("hidden-notifications", sender.id), load)
        if not await is_silenced(self.context, sender):
            return SenderReach(hidden)
        return SenderReach(hidden, await self.followers(sender))

    async def account(self, account_id: int) -> Account | None:
        async def load(session: AsyncSession) -> Account | None:
            return await session.get(Account, account_id)

        return await self._cached(("account", account_id), load)

    async def relevance(self, note: NoteData, author: Account) -> Relevance:
        candidates = self._recipient_candidates(note)

        async def recipients(session: AsyncSession) -> list[Account]:
            return await self._local_recipients(session, candidates, {m.href for m in note.mentions})

        parent = None
        if note.in_reply_to:
            parent = await self.find(note.in_reply_to)
        return Relevance(
            followers=await self.followers(author),
            local_recipients=await self._cached(("recipients", candidates), recipients) if candidates else [],
            parent=parent,
        )

    def _recipient_candidates(self, note: NoteData) -> frozenset[str]:
        # Only our own URLs can name local accounts; everything else is skipped before any query.
        prefix = self.context.urls.base + "/"
        return frozenset(
            uri
            for uri in (*(m.href for m in note.mentions), *note.to, *note.cc)
            if uri.startswith(prefix) and not is_public(uri)
        )

    async def _local_recipients(
        self, session: AsyncSession, candidates: frozenset[str], hrefs: set[str]
    ) -> list[Account]:
        if not candidates:
            return []
        rows = await session.scalars(
            select(Account).where(
                col(Account.domain).is_(None),
                col(Account.deleted_at).is_(None),
                col(Account.uri).in_(candidates) | col(Account.url).in_(candidates & hrefs),
            )
        )
        return list(rows.all())

    async def store(
        self, note: NoteData, author: Account, visibility: Visibility, *, delivered: bool = True
    ) -> Post:
        """Keep `note` now (once; a second call returns the post kept the first time).

        `delivered` is False for posts fetched only to complete a thread or a boost: they are kept
        but put in no timeline and notify nobody, as they were never sent to us.
        """
        existing = await self.find(note.uri)
        if existing is not None:
            return existing
        rows = await self.plan(note, author, visibility, delivered=delivered)
        async with self.context.sessions() as session:
            await WriteBatch(posts=[rows]).apply(session)
            await session.commit()
        stored = await self.find(note.uri)
        assert stored is not None
        return stored

    async def plan(
        self,
        note: NoteData,
        author: Account,
        visibility: Visibility,
        *,
        relevance: Relevance | None = None,
        delivered: bool = True,
    ) -> PostRows:
        """The rows that keeping `note` adds (nothing is written yet; see WriteBatch)."""
        relevance = relevance or await self.relevance(note, author)
        parent = relevance.parent
        now = utcnow()
        published = note.published if note.published and note.published <= now + MAX_FUTURE_SKEW else now
        # Its id, and the post_id of what hangs off it, are filled in when the rows are written.
        post = new_row(
            Post,
            uri=note.uri,
            url=note.url if note.url and len(note.url) <= 2048 else None,
            account_id=author.id,
            local=False,
            object_type=note.object_type,
            visibility=visibility,
            content_html=note.content_html,
            summary=note.summary,
            sensitive=note.sensitive,
            language=note.language,
            in_reply_to_uri=note.in_reply_to[:2048] if note.in_reply_to else None,
            in_reply_to_id=parent.id if parent else None,
            in_reply_to_account_id=parent.account_id if parent else None,
            conversation_uri=note.conversation,
            to=note.to,
            cc=note.cc,
            emojis=note.emojis,
            published_at=min(published, now),
            edited_at=note.updated if note.updated and note.updated > published else None,
            created_at=now,
        )
        rows = PostRows(
            post=post,
            mention_account_ids=[account.id for account in relevance.local_recipients],
            tags=note.hashtags,
            media=[new_row(MediaAttachment, **values) for values in _media_values(None, author, note)],
            poll=new_row(Poll, **_poll_values(None, note)) if note.poll is not None else None,
            parent_id=parent.id if parent else None,
            author_files_to_copy=has_files_to_copy(author),
        )
        if not delivered:
            rows.delivered = False
            return rows
        hidden = await self.hidden(author)
        readers = (
            {account.id for account in relevance.local_recipients}
            if visibility == Visibility.DIRECT
            else set(relevance.followers) - await self.refusing_language(author, note.language)
        )
        if visibility == Visibility.PUBLIC and note.hashtags:
            # A public post reaches the home timelines of those following one of its hashtags.
            readers |= await self.tag_followers(note.hashtags)
        rows.readers = sorted(readers - hidden)
        reach = await self.reach(author)
        replied_to = parent.account_id if parent is not None and parent.local else None
        if replied_to is not None and reach.reaches(replied_to):
            rows.notifications.append(notification_row(replied_to, author.id, NotificationType.REPLY))
        for account in relevance.local_recipients:
            if reach.reaches(account.id) and account.id != replied_to:
                rows.notifications.append(notification_row(account.id, author.id, NotificationType.MENTION))
        if announces_to_followers(visibility, parent.account_id if parent else None, author.id):
            told = {account.id for account in relevance.local_recipients} | {replied_to}
            for account_id in sorted(await self.notified_followers(author) - told):
                if reach.reaches(account_id):
                    rows.notifications.append(
                        notification_row(account_id, author.id, NotificationType.STATUS)
                    )
        return rows

    async def edit(self, note: NoteData, author: Account) -> Post | None:
        """Apply an Update: the previous version is kept as a PostEdit. None if the post is not known here."""
        async with self.context.sessions() as session:
            try:
                return await self._edit(session, note, author)
            except (StaleDataError, IntegrityError):
                # Deleted while we were editing it (a Delete processed at the same moment).
                await session.rollback()
                return None

    async def _edit(self, session: AsyncSession, note: NoteData, author: Account) -> Post | None:
        post = await session.scalar(select(Post).where(col(Post.uri) == note.uri))
        if post is None or post.account_id != author.id or post.reblog_of_id is not None:
            return None
        if note.updated and post.edited_at and note.updated <= post.edited_at:
            return post  # an older Update arriving late
        replaced_files: list[str] = []
        changed = (
            note.content_html != post.content_html
            or note.summary != post.summary
            or note.sensitive != post.sensitive
            or [a.url for a in note.attachments]
            != list(
                (
                    await session.scalars(
                        # The original's address: a cached copy's `url` points here.
                        select(func.coalesce(MediaAttachment.remote_url, MediaAttachment.url))
                        .where(col(MediaAttachment.post_id) == post.id)
                        .order_by(col(MediaAttachment.position))
                    )
                ).all()
            )
        )
        if changed:
            session.add(
                PostEdit(
                    post_id=post.id,
                    content_html=post.content_html,
                    summary=post.summary,
                    sensitive=post.sensitive,
                    created_at=post.edited_at or post.published_at,
                )
            )
            post.content_html = note.content_html
            post.summary = note.summary
            post.sensitive = note.sensitive
            post.language = note.language or post.language
            post.emojis = note.emojis
            post.edited_at = min(note.updated or utcnow(), utcnow())
            await session.execute(delete(PostTag).where(col(PostTag.post_id) == post.id))
            await tag_post(session, post.id, note.hashtags)
            # Cached copies of the old attachments go from the store once this is committed.
            replaced_files = await stored_keys_of_posts(session, col(Post.id) == post.id)
            await session.execute(delete(MediaAttachment).where(col(MediaAttachment.post_id) == post.id))
            for values in _media_values(post.id, author, note):
                session.add(MediaAttachment(**values))
            if (note.attachments or note.emojis) and await _on_a_local_timeline(session, post.id):
                # The new attachments and emoji are copied here as the first version's were.
                queue_job_in(session, REMOTE_MEDIA_CACHE, {"post_id": post.id})
            await self._notify_new_mentions(session, post, author, note)
            await self._notify_boosters(session, post, author)
            events.announce(session, [events.PostEdited(post.id, post.account_id)])
        if note.poll is not None:
            poll = await session.scalar(select(Poll).where(col(Poll.post_id) == post.id))
            if poll is not None:
                # The author's server counts the votes; its numbers replace ours.
                poll.options = [{"title": title, "votes": votes} for title, votes in note.poll.options]
                poll.votes_count = sum(votes for _title, votes in note.poll.options)
                poll.voters_count = note.poll.voters_count or poll.voters_count
                poll.expires_at = note.poll.expires_at
                session.add(poll)
        session.add(post)
        await session.commit()
        await self.context.media.delete(*replaced_files)
        return post

    async def _notify_new_mentions(
        self, session: AsyncSession, post: Post, author: Account, note: NoteData
    ) -> None:
        already = set(
            (await session.scalars(select(Mention.account_id).where(col(Mention.post_id) == post.id))).all()
        )
        reach = await sender_reach(session, self.context, author)
        candidates = self._recipient_candidates(note)
        for account in await self._local_recipients(session, candidates, {m.href for m in note.mentions}):
            if account.id in already:
                continue
            session.add(Mention(post_id=post.id, account_id=account.id))
            if reach.reaches(account.id):
                await notify(
                    session,
                    account=account,
                    from_account=author,
                    kind=NotificationType.MENTION,
                    post_id=post.id,
                )

    async def _notify_boosters(self, session: AsyncSession, post: Post, author: Account) -> None:
        boosters = await session.scalars(
            select(Account)
            .join(Post, col(Post.account_id) == col(Account.id))
            .where(col(Post.reblog_of_id) == post.id, col(Account.domain).is_(None))
        )
        reach = await sender_reach(session, self.context, author)
        for account in boosters.all():
            if not reach.reaches(account.id):
                continue
            await notify(
                session, account=account, from_account=author, kind=NotificationType.UPDATE, post_id=post.id
            )

    async def delete(self, uri: str, author: Account) -> bool:
        """Remove a post (or boost) of `author`, with everything hanging off it."""
        async with self.context.sessions() as session:
            post = await session.scalar(select(Post).where(col(Post.uri) == uri))
            if post is None or post.account_id != author.id:
                return False
            if post.in_reply_to_id is not None:
                await _decrement(session, post.in_reply_to_id, "replies_count")
            if post.reblog_of_id is not None:
                await _decrement(session, post.reblog_of_id, "reblogs_count")
            # Mentions, tags, media, polls, likes, boosts of it, timeline entries and notifications
            # go with it (ON DELETE CASCADE); replies keep their text and lose the link.
            cached_files = await stored_keys_of_posts(session, col(Post.id) == post.id)
            await session.execute(delete(Post).where(col(Post.id) == post.id))
            events.announce(session, [events.PostDeleted(post.id, post.account_id)])
            await session.commit()
        await self.context.media.delete(*cached_files)
        return True

    async def record_vote(self, note: NoteData, voter: Account) -> str | None:
        """Count a remote vote on a local poll; the reason it was not counted otherwise."""
        async with self.context.sessions() as session:
            post = await session.scalar(select(Post).where(col(Post.uri) == note.in_reply_to))
            if post is None or not post.local:
                return "the vote is not for a poll of this server"
            # Locked on PostgreSQL so concurrent votes are counted one after the other (SQLite has
            # one writer at a time anyway).
            poll = await session.scalar(select(Poll).where(col(Poll.post_id) == post.id).with_for_update())
            if poll is None:
                return "the post voted on has no poll"
            if poll.expires_at is not None and poll.expires_at <= utcnow():
                return "the poll has ended"
            titles = [str(option.get("title", "")) for option in poll.options]
            if note.name not in titles:
                return f"the poll has no option {note.name!r}"
            choice = titles.index(note.name)
            earlier = set(
                (
                    await session.scalars(
                        select(PollVote.choice).where(
                            col(PollVote.poll_id) == poll.id, col(PollVote.account_id) == voter.id
                        )
                    )
                ).all()
            )
            if choice in earlier or (earlier and not poll.multiple):
                return "already voted"
            session.add(PollVote(poll_id=poll.id, account_id=voter.id, choice=choice, uri=note.uri))
            await session.flush()
            counts = dict(
                (
                    await session.execute(
                        select(PollVote.choice, func.count())
                        .where(col(PollVote.poll_id) == poll.id)
                        .group_by(col(PollVote.choice))
                    )
                ).all()
            )
            voters = await session.scalar(
                select(func.count(func.distinct(PollVote.account_id))).where(col(PollVote.poll_id) == poll.id)
            )
            poll.options = [
                {**option, "votes": int(counts.get(index, 0))} for index, option in enumerate(poll.options)
            ]
            poll.votes_count = int(sum(counts.values()))
            poll.voters_count = int(voters or 0)
            session.add(poll)
            await session.commit()
        return None

    async def pin(self, account: Account, post_uri: str) -> bool:
        async with self.context.sessions() as session:
            post = await session.scalar(select(Post).where(col(Post.uri) == post_uri))
            if post is None or post.account_id != account.id:
                return False
            await session.execute(
                insert_ignoring_duplicates(
                    session,
                    Pin,
                    [{"id": new_id(), "account_id": account.id, "post_id": post.id, "created_at": utcnow()}],
                )
            )
            await session.commit()
            return True

    async def unpin(self, account: Account, post_uri: str) -> bool:
        async with self.context.sessions() as session:
            post_id = await session.scalar(select(Post.id).where(col(Post.uri) == post_uri))
            if post_id is None:
                return False
            result = await session.execute(
                delete(Pin).where(col(Pin.account_id) == account.id, col(Pin.post_id) == post_id)
            )
            await session.commit()
            return bool(getattr(result, "rowcount", 0))


def _media_values(post_id: int | None, author: Account, note: NoteData) -> list[dict[str, Any]]:
    return [
        {
            "post_id": post_id,
            "account_id": author.id,
            "media_type": attachment.media_type,
            "url": attachment.url,
            "remote_url": attachment.url,
            "description": attachment.description,
            "blurhash": attachment.blurhash,
            "width": attachment.width,
            "height": attachment.height,
            "focus_x": attachment.focus[0],
            "focus_y": attachment.focus[1],
            "position": position,
        }
        for position, attachment in enumerate(note.attachments)
    ]


def _poll_values(post_id: int | None, note: NoteData) -> dict[str, Any]:
    assert note.poll is not None
    return {
        "post_id": post_id,
        "options": [{"title": title, "votes": votes} for title, votes in note.poll.options],
        "multiple": note.poll.multiple,
        "expires_at": note.poll.expires_at,
        "voters_count": note.poll.voters_count or 0,
        "votes_count": sum(votes for _title, votes in note.poll.options),
    }


async def _on_a_local_timeline(session: AsyncSession, post_id: int) -> bool:
    return (
        await session.scalar(select(TimelineEntry.id).where(col(TimelineEntry.post_id) == post_id).limit(1))
    ) is not None


async def _decrement(session: AsyncSession, post_id: int, counter: str) -> None:
    column = getattr(Post, counter)
    await session.execute(
        update(Post).where(col(Post.id) == post_id, column > 0).values({counter: column - 1})
    )
