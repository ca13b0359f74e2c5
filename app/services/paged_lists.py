"""Timelines paged as Mastodon's clients page them: by id, with max_id (older than), since_id
(newer than, newest first) and min_id (just newer than, oldest first; returned newest first).

Each list adds the one visibility rule (visible_to) to its query, as post_lists does for the web.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Integer, Select, and_, bindparam, exists
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.models import (
    ListMember,
    MediaAttachment,
    Notification,
    Post,
    PostTag,
    Tag,
    TimelineEntry,
    UserList,
    Visibility,
)
from app.services.errors import Invalid
from app.services.lists import exclusive_members, replies_kept
from app.services.muted_threads import outside_muted_conversations
from app.services.viewer import Viewer
from app.services.visibility import Reader, reader_of, visible_to

MAX_PAGE = 80
# Statements kept per kind (per reader, account, filter and page shape): a home page's is about
# 45 KB with its cache key, over the reader's visibility condition (kept by the rule's own memo,
# about 190 KB); the least recently used go first.
STATEMENTS_KEPT = 256


@dataclass(frozen=True)
class PageRequest:
    limit: int = 20
    max_id: int | None = None
    since_id: int | None = None
    min_id: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise Invalid(f"limit: must be between 1 and {MAX_PAGE}")

    def apply(self, query: Any, column: Any) -> Any:
        if self.max_id is not None:
            query = query.where(column < self.max_id)
        if self.since_id is not None:
            query = query.where(column > self.since_id)
        if self.min_id is not None:
            return query.where(column > self.min_id).order_by(column.asc()).limit(self.limit)
        return query.order_by(column.desc()).limit(self.limit)

    def newest_first(self, rows: list[Any]) -> list[Any]:
        return list(reversed(rows)) if self.min_id is not None else rows

    @property
    def shape(self) -> PageShape:
        return PageShape(self.max_id is not None, self.since_id is not None, self.min_id is not None)

    def parameters(self) -> dict[str, int]:
        """The values of a statement paged by `shape.apply`."""
        bounds = {"page_max_id": self.max_id, "page_since_id": self.since_id, "page_min_id": self.min_id}
        return {"page_limit": self.limit} | {
            name: value for name, value in bounds.items() if value is not None
        }


@dataclass(frozen=True)
class PageShape:
    """Which bounds a page request has. A statement paged by a shape (with placeholders, not
    the request's values) serves every request of that shape: kept, it keeps its SQLAlchemy
    cache key, which otherwise is derived anew from the whole statement at every request."""

    before: bool
    after: bool
    just_after: bool

    def apply(self, query: Any, column: Any) -> Any:
        """`PageRequest.apply` with placeholders; run it with `PageRequest.parameters()`."""
        if self.before:
            query = query.where(column < bindparam("page_max_id"))
        if self.after:
            query = query.where(column > bindparam("page_since_id"))
        limit = bindparam("page_limit", type_=Integer)
        if self.just_after:
            return query.where(column > bindparam("page_min_id")).order_by(column.asc()).limit(limit)
        return query.order_by(column.desc()).limit(limit)


async def home_posts(context: AppContext, viewer: Viewer, page: PageRequest) -> list[Post]:
    """The home timeline of the account the viewer acts as (posts and boosts, by their ids)."""
    if viewer.account is None:
        return []
    query = _home_query(reader_of(viewer), page.shape)
    async with context.sessions() as session:
        rows = list((await session.scalars(query, page.parameters())).all())
    return page.newest_first(rows)


@lru_cache(maxsize=STATEMENTS_KEPT)
def _home_query(reader: Reader, shape: PageShape) -> Select[Any]:
    """The home timeline's statement for one reader and page shape, built once: apps poll it all
    day, and building it and its cache key cost more than running it. Like the visibility rule's
    memo, an immutable SQL expression keyed by the ids it names; blocks and follows made since
    are read by the statement, not kept in it."""
    assert reader.account_id is not None
    query = (
        select(Post)
        .join(TimelineEntry, col(TimelineEntry.post_id) == col(Post.id))
        .where(
            col(TimelineEntry.account_id) == reader.account_id,
            visible_to(reader),
            # Members of the account's exclusive lists are read in those lists only.
            exclusive_members(reader.account_id),
        )
    )
    # Paged on the entry's copy of the post id: the (account, post) index then yields the page
    # in order, and the visibility rule is checked for the rows read until the page is full
    # rather than for the whole timeline before a sort.
    paged: Select[Any] = shape.apply(query, col(TimelineEntry.post_id))
    return paged


async def list_posts(context: AppContext, viewer: Viewer, found: UserList, page: PageRequest) -> list[Post]:
    """A list's timeline (`found` is one of the viewer's, from ListService.get): the members'
    posts and boosts the viewer may see, with the replies the list's replies_policy keeps."""
    if viewer.account is None:
        return []
    members = select(ListMember.account_id).where(col(ListMember.list_id) == found.id)
    query = select(Post).where(
        col(Post.account_id).in_(members), visible_to(viewer), replies_kept(found, viewer.account.id, members)
    )
    async with context.sessions() as session:
        rows = list((await session.scalars(page.apply(query, col(Post.id)))).all())
    return page.newest_first(rows)


async def lists_showing(
    context: AppContext, viewer: Viewer, post_id: int, lists: Sequence[UserList]
) -> set[int]:
    """Which of the viewer's `lists` show `post_id` in their timelines, by list_posts' rule."""
    if viewer.account is None or not lists:
        return set()
    shown: set[int] = set()
    async with context.sessions() as session:
        for found in lists:
            members = select(ListMember.account_id).where(col(ListMember.list_id) == found.id)
            hit = await session.scalar(
                select(col(Post.id)).where(
                    col(Post.id) == post_id,
                    col(Post.account_id).in_(members),
                    visible_to(viewer),
                    replies_kept(found, viewer.account.id, members),
                )
            )
            if hit is not None:
                shown.add(found.id)
    return shown


async def public_posts(
    context: AppContext,
    viewer: Viewer,
    page: PageRequest,
    *,
    local: bool = False,
    remote: bool = False,
    only_media: bool = False,
) -> list[Post]:
    """Public posts (not boosts) the viewer may see; only those written here, or only elsewhere;
    only those with media attached."""
    query = select(Post).where(_public_listing(viewer, local=local, remote=remote, only_media=only_media))
    async with context.sessions() as session:
        rows = list((await session.scalars(page.apply(query, col(Post.id)))).all())
    return page.newest_first(rows)


def _public_listing(viewer: Viewer, *, local: bool, remote: bool, only_media: bool) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [
        col(Post.visibility) == Visibility.PUBLIC,
        col(Post.reblog_of_id).is_(None),
        visible_to(viewer),
    ]
    if local:
        conditions.append(col(Post.local).is_(True))
    elif remote:
        conditions.append(col(Post.local).is_(False))
    if only_media:
        conditions.append(exists().where(col(MediaAttachment.post_id) == Post.id))
    return and_(*conditions)


def _tagged(names: Sequence[str]) -> ColumnElement[bool]:
    return exists().where(
        col(PostTag.post_id) == Post.id,
        col(PostTag.tag_id) == col(Tag.id),
        col(Tag.name).in_([name.lower() for name in names]),
    )


async def tag_posts(
    context: AppContext,
    viewer: Viewer,
    page: PageRequest,
    hashtag: str,
    *,
    any_of: Sequence[str] = (),
    all_of: Sequence[str] = (),
    none_of: Sequence[str] = (),
    local: bool = False,
    remote: bool = False,
    only_media: bool = False,
) -> list[Post]:
    """Public posts with `hashtag` or any of `any_of`, also carrying each of `all_of` and none of
    `none_of` (Mastodon's tag timeline)."""
    conditions = [
        _public_listing(viewer, local=local, remote=remote, only_media=only_media),
        _tagged([hashtag, *any_of]),
        *(_tagged([name]) for name in all_of),
    ]
    if none_of:
        conditions.append(~_tagged(none_of))
    query = select(Post).where(*conditions)
    async with context.sessions() as session:
        rows = list((await session.scalars(page.apply(query, col(Post.id)))).all())
    return page.newest_first(rows)


@dataclass(frozen=True)
class NotificationEntry:
    notification: Notification
    # Not read here: the client API shows senders from its kept account entities.
    sender_id: int
    # The post it is about, when there is one the account may still see.
    post: Post | None


async def notifications_of(
    context: AppContext,
    viewer: Viewer,
    page: PageRequest,
    *,
    types: set[str] | None = None,
    exclude_types: set[str] | None = None,
    from_account_id: int | None = None,
) -> tuple[list[NotificationEntry], list[int]]:
    """The viewer's account's notifications, newest first, and the ids of the page (for paging).

    A notification about a post the account may no longer see (deleted, a block since) is left
    out, as the web page leaves it out: the rule's SQL form picks the posts, in one query."""
    if viewer.account is None:
        return [], []
    query = _notifications_query(
        viewer.account.id,
        frozenset(types) if types is not None else None,
        frozenset(exclude_types or ()),
        from_account_id is not None,
        page.shape,
    )
    values: dict[str, Any] = page.parameters()
    if from_account_id is not None:
        values["notifications_from_id"] = from_account_id
    async with context.sessions() as session:
        rows = page.newest_first(list((await session.scalars(query, values)).all()))
        entries = await _notification_entries(session, viewer, rows)
    return entries, [row.id for row in rows]


@lru_cache(maxsize=STATEMENTS_KEPT)
def _notifications_query(
    account_id: int,
    types: frozenset[str] | None,
    exclude_types: frozenset[str],
    from_one_account: bool,
    shape: PageShape,
) -> Select[Any]:
    """The notification list's statement, built once per account, filter and page shape (apps
    poll it all day; see _home_query)."""
    query = select(Notification).where(
        col(Notification.account_id) == account_id, outside_muted_conversations(account_id)
    )
    if types is not None:
        query = query.where(col(Notification.type).in_(types))
    if exclude_types:
        query = query.where(col(Notification.type).not_in(exclude_types))
    if from_one_account:
        query = query.where(col(Notification.from_account_id) == bindparam("notifications_from_id"))
    paged: Select[Any] = shape.apply(query, col(Notification.id))
    return paged


async def notifications_by_id(
    context: AppContext, viewer: Viewer, ids: Sequence[int]
) -> list[NotificationEntry]:
    """These notifications of the viewer's account (streaming sends them one by one), by the same
    rule as the list: one about a post the account may no longer see is left out."""
    if viewer.account is None or not ids:
        return []
    query = select(Notification).where(
        col(Notification.account_id) == viewer.account.id,
        col(Notification.id).in_(list(ids)),
        outside_muted_conversations(viewer.account.id),
    )
    async with context.sessions() as session:
        rows = list((await session.scalars(query.order_by(col(Notification.id).desc()))).all())
        return await _notification_entries(session, viewer, rows)


async def _notification_entries(
    session: AsyncSession, viewer: Viewer, rows: list[Notification]
) -> list[NotificationEntry]:
    posts = await visible_among(session, viewer, {row.post_id for row in rows if row.post_id})
    return [
        NotificationEntry(row, row.from_account_id, posts.get(row.post_id) if row.post_id else None)
        for row in rows
        if row.post_id is None or row.post_id in posts
    ]


async def visible_among(session: AsyncSession, viewer: Viewer, post_ids: Collection[int]) -> dict[int, Post]:
    """The posts among `post_ids` the viewer may see, by the rule of a post's own URL (a muted
    author's too): the notification lists keep only those."""
    if not post_ids:
        return {}
    rows = await session.scalars(_visible_among_query(reader_of(viewer)), {"listed_post_ids": list(post_ids)})
    return {post.id: post for post in rows.all()}


@lru_cache(maxsize=STATEMENTS_KEPT)
def _visible_among_query(reader: Reader) -> Select[Any]:
    """visible_among's statement, built once per reader (see _home_query)."""
    ids: BindParameter[list[int]] = bindparam("listed_post_ids", expanding=True)
    return select(Post).where(col(Post.id).in_(ids), visible_to(reader, hide_muted=False))


__all__ = [
    "MAX_PAGE",
    "STATEMENTS_KEPT",
    "NotificationEntry",
    "PageRequest",
    "PageShape",
    "home_posts",
    "list_posts",
    "lists_showing",
    "notifications_by_id",
    "notifications_of",
    "public_posts",
    "tag_posts",
    "visible_among",
]
