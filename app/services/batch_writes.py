"""Writes gathered from many units of work (inbox items) and committed in one transaction.

Each statement through SQLAlchemy costs a fixed ~0.3 ms of CPU whatever it carries, so rows
written one item at a time cap the worker at a few hundred items a second; the same rows written
for a batch of items with one multi-row statement per table cost a fraction of that. A handler
decides what to write (reading what it needs), adds the rows here, and the owner of the batch
applies them all at once, together with its own bookkeeping (marking the items done), so the
effects and the record that they happened commit together.

Every id is drawn when the batch is applied (`new_id` never repeats within a process, however
many are drawn in one millisecond). Rows that hang off a post (its media, its poll, notifications about it) get the
post's id then. A post that turns out to exist already (another delivery of it won) adds nothing
else.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from app.db import dialect_insert
from app.models import (
    BackgroundJob,
    Favourite,
    MediaAttachment,
    Mention,
    Notification,
    Poll,
    Post,
    PostTag,
    TimelineEntry,
)
from app.models.base import new_id, table_of, utcnow
from app.services import events
from app.services.jobs import REMOTE_MEDIA_CACHE
from app.services.timelines import ensure_tags
from app.services.web_push import new_notifications, queue_pushes

T = TypeVar("T")


def new_row(model: type[SQLModel], **values: Any) -> dict[str, Any]:
    """A row for a multi-row INSERT: `values`, and the model's defaults for every other column.

    Much cheaper than building the model instance (which validates and instruments every field),
    which matters when a batch writes hundreds of rows.
    """
    fields = model.model_fields
    row: dict[str, Any] = {}
    for column in table_of(model).columns:
        name = column.name
        row[name] = values[name] if name in values else fields[name].get_default(call_default_factory=True)
    return row


@dataclass
class PostRows:
    """Everything one kept post adds: the post, and what hangs off it once it is in.

    Ids (the post's, its media's...) and the `post_id` of its media, poll and notifications are
    filled in when applied; a notification that names another post (a boost's) keeps its own.
    """

    post: dict[str, Any]
    mention_account_ids: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    media: list[dict[str, Any]] = field(default_factory=list)
    poll: dict[str, Any] | None = None
    # The post this replies to (its replies_count goes up), and a boost's original (reblogs_count).
    parent_id: int | None = None
    reblog_of_id: int | None = None
    readers: list[int] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    # False for a post fetched only to complete a thread or a boost: nobody sent it to us.
    delivered: bool = True
    # The author's avatar, header or name emoji are not copied here yet (app.services.remote_media).
    author_files_to_copy: bool = False


@dataclass
class FavouriteRows:
    favourite: dict[str, Any]
    notification: dict[str, Any] | None


@dataclass
class WriteBatch:
    posts: list[PostRows] = field(default_factory=list)
    favourites: list[FavouriteRows] = field(default_factory=list)

    def merge(self, other: WriteBatch) -> None:
        self.posts.extend(other.posts)
        self.favourites.extend(other.favourites)

    async def apply(self, session: AsyncSession, *, tag_ids: dict[str, int] | None = None) -> None:
        """Write everything in `session`; the caller commits. `tag_ids` remembers hashtag ids across
        batches (tags are never deleted), so known ones cost no query."""
        notifications: list[dict[str, Any]] = []
        await self._apply_posts(session, notifications, {} if tag_ids is None else tag_ids)
        await self._apply_favourites(session, notifications)
        if notifications:
            rows = [{**row, "id": new_id()} for row in notifications]
            await session.execute(dialect_insert(session, Notification), rows)
            await queue_pushes(session, new_notifications(rows))
            events.announce(
                session,
                (
                    events.NotificationAdded(
                        row["account_id"], row["from_account_id"], row["type"], row["post_id"], row["id"]
                    )
                    for row in rows
                ),
            )

    async def _apply_posts(
        self,
        session: AsyncSession,
        notifications: list[dict[str, Any]],
        tag_ids: dict[str, int],
    ) -> None:
        if not self.posts:
            return
        for rows in self.posts:
            rows.post["id"] = new_id()
        result = await session.execute(
            dialect_insert(session, Post)
            .on_conflict_do_nothing(index_elements=["uri"])
            .returning(table_of(Post).c.id),
            [rows.post for rows in self.posts],
        )
        inserted = {row[0] for row in result.all()}
        kept = [rows for rows in self.posts if rows.post["id"] in inserted]
        if not kept:
            return
        # A reply shows under its parent on the public thread pages (app.public_cache).
        events.announce(
            session,
            [
                events.PostPublished(
                    rows.post["id"], rows.post["account_id"], local=False, in_reply_to_id=rows.parent_id
                )
                for rows in kept
                if rows.delivered
            ],
        )
        mentions = [
            {"id": new_id(), "post_id": rows.post["id"], "account_id": account_id}
            for rows in kept
            for account_id in dict.fromkeys(rows.mention_account_ids)
        ]
        if mentions:
            await session.execute(dialect_insert(session, Mention).on_conflict_do_nothing(), mentions)
        await self._apply_tags(session, kept, tag_ids)
        media = [{**item, "id": new_id(), "post_id": rows.post["id"]} for rows in kept for item in rows.media]
        if media:
            await session.execute(dialect_insert(session, MediaAttachment), media)
        polls = [
            {**rows.poll, "id": new_id(), "post_id": rows.post["id"]}
            for rows in kept
            if rows.poll is not None
        ]
        if polls:
            await session.execute(dialect_insert(session, Poll), polls)
        now = utcnow()
        timeline = [
            {"id": new_id(), "account_id": reader, "post_id": rows.post["id"], "created_at": now}
            for rows in kept
            for reader in dict.fromkeys(rows.readers)
        ]
        if timeline:
            await self._add_timeline_entries(session, timeline)
        # Attachments and custom emoji of posts that reach a local timeline (and their authors'
        # pictures and name emoji, until copied) are copied here by the worker (it polls its jobs queue, so no wake-up is needed from inside the batch).
        caching = [
            new_row(BackgroundJob, id=new_id(), kind=REMOTE_MEDIA_CACHE, payload={"post_id": rows.post["id"]})
            for rows in kept
            if (rows.media or rows.post.get("emojis") or rows.author_files_to_copy) and rows.readers
        ]
        if caching:
            await session.execute(dialect_insert(session, BackgroundJob), caching)
        notifications.extend(
            {**notification, "post_id": notification["post_id"] or rows.post["id"]}
            for rows in kept
            for notification in rows.notifications
        )
        await _increment(session, "replies_count", Counter(rows.parent_id for rows in kept if rows.parent_id))
        await _increment(
            session, "reblogs_count", Counter(rows.reblog_of_id for rows in kept if rows.reblog_of_id)
        )

    async def _add_timeline_entries(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        statement = dialect_insert(session, TimelineEntry).on_conflict_do_nothing()
        if not events.listening(session):
            await session.execute(statement, rows)
            return
        # Only the entries actually added are announced: one already there was announced when it was.
        table = table_of(TimelineEntry)
        added = await session.execute(statement.returning(table.c.account_id, table.c.post_id), rows)
        events.announce(session, [events.TimelineEntryAdded(*found) for found in added.all()])

    async def _apply_tags(self, session: AsyncSession, kept: list[PostRows], tag_ids: dict[str, int]) -> None:
        names = sorted({name for rows in kept for name in rows.tags})
        if not names:
            return
        await ensure_tags(session, names, tag_ids)
        await session.execute(
            dialect_insert(session, PostTag).on_conflict_do_nothing(),
            [
                {"id": new_id(), "post_id": rows.post["id"], "tag_id": tag_ids[name]}
                for rows in kept
                for name in dict.fromkeys(rows.tags)
                if name in tag_ids
            ],
        )

    async def _apply_favourites(self, session: AsyncSession, notifications: list[dict[str, Any]]) -> None:
        if not self.favourites:
            return
        for rows in self.favourites:
            rows.favourite["id"] = new_id()
        result = await session.execute(
            dialect_insert(session, Favourite).on_conflict_do_nothing().returning(table_of(Favourite).c.id),
            [rows.favourite for rows in self.favourites],
        )
        inserted = {row[0] for row in result.all()}
        kept = [rows for rows in self.favourites if rows.favourite["id"] in inserted]
        notifications.extend(rows.notification for rows in kept if rows.notification is not None)
        await _increment(session, "favourites_count", Counter(rows.favourite["post_id"] for rows in kept))


async def _increment(session: AsyncSession, counter: str, by_post: Counter[int]) -> None:
    if not by_post:
        return
    table = table_of(Post)
    # In id order, so that two batches touching the same posts lock them in the same order.
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("post_id"))
        .values({counter: table.c[counter] + bindparam("amount")}),
        [{"post_id": post_id, "amount": amount} for post_id, amount in sorted(by_post.items())],
    )
