"""The read model: a page of posts turned into views, in a fixed number of queries.

One loader for every surface: the web pages' cards, the command line's JSON, and later the
client API's Status entities. A view carries the post (for a boost: the boosted post, with who
boosted it), its author, media, mentions, hashtags, poll, whom it replies to, who wrote an
organisation's post (for those who may know), and the viewer's own flags: liked, boosted,
pinned, may edit. Whatever the page's size, loading it costs the same queries (at most ten),
never one per post.

It decides nothing about visibility: lists select what the viewer may see
(app.services.visibility) and hand the rows here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from sqlalchemy import BindParameter, CompoundSelect, bindparam, func, literal, union_all
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.models import (
    Account,
    Bookmark,
    ConversationMute,
    Favourite,
    MediaAttachment,
    Mention,
    Pin,
    Poll,
    Post,
    PostTag,
    Tag,
    User,
)
from app.services.content_filters import ActiveFilters, FilterMatch, active_filters
from app.services.remote_emojis import ShownEmoji, shown_emojis
from app.services.viewer import Viewer
from app.services.visibility import EVERYONE


@dataclass(frozen=True)
class PostView:
    """One entry of a list. For a boost, `post` is the boosted post and `boosted_by` who boosted;
    `item` is the row listed (the boost itself, or the post)."""

    post: Post
    author: Account
    item: Post
    boosted_by: Account | None = None
    media: list[MediaAttachment] = field(default_factory=list)
    mentions: list[Account] = field(default_factory=list)
    # Lower-cased hashtag names, as stored.
    tags: list[str] = field(default_factory=list)
    # The custom emoji of a remote post that are copied here (the others stay :shortcode: text).
    emojis: list[ShownEmoji] = field(default_factory=list)
    poll: Poll | None = None
    reply_to: Account | None = None
    # The staff member who wrote an organisation's post: only for admins and the organisation's team.
    written_by: Account | None = None
    liked: bool = False
    boosted: bool = False
    pinned: bool = False
    bookmarked: bool = False
    # The viewer muted the post's thread (no notifications from it).
    muted: bool = False
    # The viewer may edit, delete and pin it (their own post or one of an organisation they post for).
    manageable: bool = False
    # The viewer's content filters it matched (only for pages loaded in a filter context).
    filtered: tuple[FilterMatch, ...] = ()

    @property
    def may_edit(self) -> bool:
        return self.manageable

    @property
    def is_public(self) -> bool:
        return self.post.visibility in EVERYONE

    @property
    def is_boost(self) -> bool:
        return self.boosted_by is not None


@dataclass(frozen=True)
class PostMarks:
    """Which posts of a page the viewer's account liked, boosted, bookmarked or muted the thread
    of, and which are pinned (by their author: any pin of a post is its author's)."""

    liked: set[int] = field(default_factory=set)
    boosted: set[int] = field(default_factory=set)
    bookmarked: set[int] = field(default_factory=set)
    muted: set[int] = field(default_factory=set)
    pinned: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class PostContents:
    """What a post carries besides its row: what the AS2 renderers need to write its Note."""

    mentions: list[Account] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    media: list[MediaAttachment] = field(default_factory=list)


async def load_contents(session: AsyncSession, post_ids: Sequence[int]) -> dict[int, PostContents]:
    """Mentions, hashtags and media of each post, in three queries."""
    ids = list(dict.fromkeys(post_ids))
    if not ids:
        return {}
    media = await _media(session, ids)
    mentions = await _mentions(session, ids)
    tags = await _tags(session, ids)
    return {
        post_id: PostContents(mentions.get(post_id, []), tags.get(post_id, []), media.get(post_id, []))
        for post_id in ids
    }


async def load_views(
    context: AppContext,
    items: Sequence[Post],
    viewer: Viewer | None = None,
    *,
    filter_context: str | None = None,
) -> list[PostView]:
    """Views of `items` in the order given (a boost whose post is gone is left out).

    With `filter_context` (home, public, thread, account, notifications), the viewer's content
    filters for it apply: a post a `hide` filter matches is left out, others carry their matches."""
    if not items:
        return []
    async with context.sessions() as session:
        views = await PostViewLoader(session, viewer or Viewer.nobody()).load(items)
        if filter_context is None or viewer is None or viewer.account is None:
            return views
        filters = await active_filters(session, viewer.account.id, filter_context)
    if not filters:
        return views
    return apply_filters(views, filters, viewer)


def apply_filters(views: Sequence[PostView], filters: ActiveFilters, viewer: Viewer) -> list[PostView]:
    """The views with the filters' matches; those a `hide` filter matched left out. The viewer's
    own posts are never filtered."""
    kept = []
    for view in views:
        matches = filter_matches(filters, viewer, view.post, view.media)
        if matches is None:
            continue
        kept.append(replace(view, filtered=matches) if matches else view)
    return kept


def filter_matches(
    filters: ActiveFilters, viewer: Viewer, post: Post, media: Sequence[MediaAttachment]
) -> tuple[FilterMatch, ...] | None:
    """The viewer's filters `post` matches; None when a `hide` filter matched (it is left out).
    The viewer's own posts are never filtered."""
    if viewer.may_act_as(post.account_id):
        return ()
    matches = filters.match(post, media)
    if any(match.hides for match in matches):
        return None
    return tuple(matches)


class PostViewLoader:
    """Loads views within a session the caller holds (the services' own transactions use it)."""

    def __init__(self, session: AsyncSession, viewer: Viewer) -> None:
        self.session = session
        self.viewer = viewer

    async def load(self, items: Sequence[Post]) -> list[PostView]:
        session = self.session
        shown = await shown_posts(session, items)
        if not shown:
            return []
        post_ids = list(dict.fromkeys(post.id for _, post in shown))
        account_ids = {post.account_id for _, post in shown} | {item.account_id for item, _ in shown}
        account_ids |= {post.in_reply_to_account_id for _, post in shown if post.in_reply_to_account_id}
        accounts = await accounts_by_id(session, account_ids)
        contents = await load_contents(session, post_ids)
        polls = {
            poll.post_id: poll
            for poll in (await session.scalars(select(Poll).where(col(Poll.post_id).in_(post_ids)))).all()
        }
        marks = await post_marks(session, self.viewer, post_ids)
        writers = await self._writers(post for _, post in shown)
        emojis = await shown_emojis(
            session, ((post, accounts[post.account_id]) for _, post in shown if post.account_id in accounts)
        )

        views = []
        for item, post in shown:
            author = accounts.get(post.account_id)
            if author is None:
                continue
            views.append(
                PostView(
                    post=post,
                    author=author,
                    item=item,
                    boosted_by=accounts.get(item.account_id) if item is not post else None,
                    media=contents[post.id].media,
                    mentions=contents[post.id].mentions,
                    tags=contents[post.id].tags,
                    emojis=emojis.get(post.id, []),
                    poll=polls.get(post.id),
                    reply_to=accounts.get(post.in_reply_to_account_id)
                    if post.in_reply_to_account_id
                    else None,
                    written_by=_writer(writers, post),
                    liked=post.id in marks.liked,
                    boosted=post.id in marks.boosted,
                    pinned=post.id in marks.pinned,
                    bookmarked=post.id in marks.bookmarked,
                    muted=post.id in marks.muted,
                    manageable=post.local
                    and self.viewer.account is not None
                    and self.viewer.may_act_as(post.account_id),
                )
            )
        return views

    async def _writers(self, posts: Iterable[Post]) -> dict[int, Account]:
        """The staff behind organisations' posts, for viewers allowed to know (admins, the team)."""
        viewer = self.viewer
        if viewer.account is None and not viewer.is_system:
            return {}
        writer_ids = {
            post.written_by_user_id
            for post in posts
            if post.written_by_user_id and (viewer.is_admin or viewer.may_act_as(post.account_id))
        }
        if not writer_ids:
            return {}
        rows = await self.session.execute(
            select(User.id, Account)
            .join(Account, col(Account.id) == col(User.account_id))
            .where(col(User.id).in_(writer_ids))
        )
        return {user_id: account for user_id, account in rows.all()}


async def shown_posts(session: AsyncSession, items: Sequence[Post]) -> list[tuple[Post, Post]]:
    """Each item listed with the post it shows: itself, or for a boost the boosted post (a boost
    whose post is gone is left out). One query when the page holds boosts, none otherwise."""
    boosted_ids = {item.reblog_of_id for item in items if item.reblog_of_id}
    originals: dict[int, Post] = {}
    if boosted_ids:
        rows = await session.scalars(select(Post).where(col(Post.id).in_(boosted_ids)))
        originals = {post.id: post for post in rows.all()}
    shown: list[tuple[Post, Post]] = []
    for item in items:
        if item.reblog_of_id:
            original = originals.get(item.reblog_of_id)
            if original is None or original.deleted_at is not None:
                continue
            shown.append((item, original))
        else:
            shown.append((item, item))
    return shown


async def accounts_by_id(session: AsyncSession, account_ids: Iterable[int]) -> dict[int, Account]:
    rows = await session.scalars(select(Account).where(col(Account.id).in_(set(account_ids))))
    return {account.id: account for account in rows.all()}


async def post_marks(session: AsyncSession, viewer: Viewer, post_ids: Sequence[int]) -> PostMarks:
    """The pins of `post_ids`, and those the viewer's account liked, boosted and bookmarked, and
    those in threads it muted: one query, however many kinds of mark there are."""
    marks = PostMarks()
    if not post_ids:
        return marks
    values: dict[str, Any] = {"page_post_ids": list(post_ids)}
    if viewer.account is not None:
        values["marking_account_id"] = viewer.account.id
    rows: list[Any] = list((await session.execute(_marks_query(viewer.account is not None), values)).all())
    for mark, post_id in rows:
        if post_id is not None:
            getattr(marks, mark).add(post_id)
    return marks


@cache
def _marks_query(of_an_account: bool) -> CompoundSelect:
    """The marks' statement, built once (two shapes: with and without an account), its values
    bound when it runs. Building it and deriving its cache key anew for each page cost more
    than a home timeline's SQL itself; a statement that lives on keeps its key (SQLAlchemy
    memoises it on the object). An immutable SQL expression, the same for every instance."""
    # One parameter for the five lists: expanded once, not five times.
    ids: BindParameter[list[int]] = bindparam("page_post_ids", expanding=True)
    pinned = sql_select(literal("pinned"), col(Pin.post_id)).where(col(Pin.post_id).in_(ids))
    kinds: list[Any] = [pinned]
    if of_an_account:
        me: BindParameter[int] = bindparam("marking_account_id")
        kinds.append(
            sql_select(literal("liked"), col(Favourite.post_id)).where(
                col(Favourite.account_id) == me, col(Favourite.post_id).in_(ids)
            )
        )
        kinds.append(
            sql_select(literal("boosted"), col(Post.reblog_of_id)).where(
                col(Post.account_id) == me, col(Post.reblog_of_id).in_(ids), col(Post.deleted_at).is_(None)
            )
        )
        kinds.append(
            sql_select(literal("bookmarked"), col(Bookmark.post_id)).where(
                col(Bookmark.account_id) == me, col(Bookmark.post_id).in_(ids)
            )
        )
        kinds.append(
            sql_select(literal("muted"), col(Post.id))
            .join(
                ConversationMute,
                col(ConversationMute.conversation_uri)
                == func.coalesce(col(Post.conversation_uri), col(Post.uri)),
            )
            .where(col(ConversationMute.account_id) == me, col(Post.id).in_(ids))
        )
    return union_all(*kinds)


async def _media(session: AsyncSession, post_ids: list[int]) -> dict[int, list[MediaAttachment]]:
    found: dict[int, list[MediaAttachment]] = {}
    rows = await session.scalars(
        select(MediaAttachment)
        .where(col(MediaAttachment.post_id).in_(post_ids))
        .order_by(col(MediaAttachment.position), col(MediaAttachment.id))
    )
    for attachment in rows.all():
        if attachment.post_id is not None:
            found.setdefault(attachment.post_id, []).append(attachment)
    return found


async def _mentions(session: AsyncSession, post_ids: list[int]) -> dict[int, list[Account]]:
    found: dict[int, list[Account]] = {}
    rows = await session.execute(
        select(Mention.post_id, Account)
        .join(Account, col(Account.id) == col(Mention.account_id))
        .where(col(Mention.post_id).in_(post_ids))
        .order_by(col(Mention.id))
    )
    for post_id, account in rows.all():
        found.setdefault(post_id, []).append(account)
    return found


async def _tags(session: AsyncSession, post_ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    rows = await session.execute(
        select(PostTag.post_id, Tag.name)
        .join(Tag, col(Tag.id) == col(PostTag.tag_id))
        .where(col(PostTag.post_id).in_(post_ids))
        .order_by(col(PostTag.id))
    )
    for post_id, name in rows.all():
        found.setdefault(post_id, []).append(name)
    return found


def _writer(writers: dict[int, Account], post: Post) -> Account | None:
    """The staff member behind an organisation's post (nobody for a post written by its own account)."""
    writer = writers.get(post.written_by_user_id) if post.written_by_user_id else None
    return writer if writer is not None and writer.id != post.account_id else None


__all__ = [
    "PostContents",
    "PostMarks",
    "PostView",
    "PostViewLoader",
    "accounts_by_id",
    "apply_filters",
    "filter_matches",
    "load_contents",
    "load_views",
    "post_marks",
    "shown_posts",
]
