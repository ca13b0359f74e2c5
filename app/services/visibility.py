"""Who may see a post: one rule, in a SQL form for lists and a Python form for one post.

`visible_to(viewer)` is a condition on `Post` that every list adds to its query (timelines,
profiles, threads, hashtags, feeds, the featured and outbox collections), so lists never load
posts and drop some afterwards. `can_see(viewer, post)` asks the same condition about one post,
so the two forms cannot drift apart.

The rule:
- a deleted post is seen by nobody;
- public and unlisted posts by everyone, followers-only posts by the author's accepted
  followers, direct posts by the accounts they mention; a post is always seen by its author and
  by whoever may act as the author (an organisation's team), who also read what the
  organisation account may read;
- never across a block, whichever side blocked, nor from a domain the viewer hides;
- in lists (not at a post's own URL, and not on the profile of the muted account itself),
  nothing from an account the viewer muted;
- a boost is seen only when the boosted post may be seen;
- the system viewer (the server itself, the command line) sees every post not deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, false, or_, select, true, union_all
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.context import AppContext
from app.models import (
    Account,
    AccountBlock,
    AccountMute,
    Follow,
    FollowState,
    Mention,
    Post,
    UserDomainBlock,
    Visibility,
)
from app.models.base import UTCDateTime, utcnow
from app.services.viewer import Viewer

EVERYONE = (Visibility.PUBLIC, Visibility.UNLISTED)


@dataclass(frozen=True)
class Reader:
    """What the rule depends on about a viewer: ids only (hashable, so the condition, and the
    statements of lists built on it, are memoized by it)."""

    is_system: bool
    account_id: int | None
    acting_ids: frozenset[int]

    @property
    def ids(self) -> list[int]:
        """The accounts whose reading rights the viewer has: its own and those it acts for."""
        ids = set(self.acting_ids)
        if self.account_id is not None:
            ids.add(self.account_id)
        return sorted(ids)


def reader_of(viewer: Viewer) -> Reader:
    return Reader(viewer.is_system, viewer.account_id, viewer.acting_ids)


def visible_to(viewer: Viewer | Reader, *, hide_muted: bool = True, post: Any = Post) -> ColumnElement[bool]:
    """The condition on `post` (the Post table or an alias of it) that `viewer` may see it.

    `hide_muted=False` for what the viewer asked for by name: a post's own URL, a muted
    account's own profile.
    """
    reader = viewer if isinstance(viewer, Reader) else reader_of(viewer)
    if post is Post:
        return _visible_condition(reader, hide_muted)
    return _build(reader, hide_muted, post)


# About 190 KB each with its cache key (measured): 256 readers are about 50 MB a process at most,
# where 2,048 could have grown to 390 MB; a reader beyond them costs its rebuilding, not an error.
@lru_cache(maxsize=256)
def _visible_condition(reader: Reader, hide_muted: bool) -> ColumnElement[bool]:
    """The condition on Post, built once per reader: building it costs milliseconds (a third of
    a home timeline's CPU before), and every page of every list asks for it. A memo of an
    immutable SQL expression keyed by everything it depends on (the ids it names, not the rows
    behind them), so it holds no state: instances sharing a process get the same expression for
    the same ids, and blocks or follows made since are read by the query, not by the memo."""
    return _build(reader, hide_muted, Post)


def _build(reader: Reader, hide_muted: bool, post: Any) -> ColumnElement[bool]:
    if reader.is_system:
        return col(post.deleted_at).is_(None)
    readers = reader.ids
    own = col(post.account_id).in_(readers) if readers else false()
    readable = or_(col(post.visibility).in_(EVERYONE), own)
    if readers:
        # What any account the viewer acts for may read: an organisation's team reads its mentions.
        followers_post = and_(
            post.visibility == Visibility.FOLLOWERS,
            exists().where(
                col(Follow.follower_id).in_(readers),
                col(Follow.followee_id) == post.account_id,
                col(Follow.state) == FollowState.ACCEPTED,
            ),
        )
        mentioned = exists().where(col(Mention.post_id) == post.id, col(Mention.account_id).in_(readers))
        readable = or_(readable, followers_post, mentioned)
    condition = and_(
        col(post.deleted_at).is_(None), readable, _not_hidden(reader.account_id, post.account_id, hide_muted)
    )
    if post is Post:
        # A boost shows what it boosts: only when that post may be seen too.
        original = aliased(Post)
        boosted_visible = exists().where(
            col(original.id) == post.reblog_of_id,
            _build(reader, hide_muted, original),
        )
        condition = and_(condition, or_(col(post.reblog_of_id).is_(None), boosted_visible))
    return condition


async def can_see(context: AppContext, viewer: Viewer, post: Post) -> bool:
    """Whether `viewer` may see `post` at its own URL (and act on it): the list rule, asked of one post."""
    if post.deleted_at is not None:
        return False
    if _owns(viewer, post):
        return True
    async with context.sessions() as session:
        found = await session.scalar(
            select(col(Post.id)).where(col(Post.id) == post.id, visible_to(viewer, hide_muted=False)).limit(1)
        )
    return found is not None


def _owns(viewer: Viewer, post: Post) -> bool:
    return viewer.is_system or viewer.account_id == post.account_id or post.account_id in viewer.acting_ids


def mute_in_force() -> ColumnElement[bool]:
    """A mute counts until it expires (a mute for a while, Mastodon's `duration`).

    The moment is bound when the statement runs, not when the condition is built: the list
    condition is built once per reader and kept (see _visible_condition)."""
    now = bindparam("mute_now", callable_=utcnow, type_=UTCDateTime(), unique=True)
    return col(AccountMute.expires_at).is_(None) | (col(AccountMute.expires_at) > now)


def _not_hidden(reader: int | None, author_id: Any, hide_muted: bool) -> ColumnElement[bool]:
    """The author is not on the other side of a block from the reader, nor muted or hidden by domain."""
    if reader is None:
        return true()
    hidden: list[Select[Any]] = [
        select(col(AccountBlock.target_account_id).label("id")).where(col(AccountBlock.account_id) == reader),
        select(col(AccountBlock.account_id).label("id")).where(col(AccountBlock.target_account_id) == reader),
        select(col(Account.id).label("id"))
        .join(UserDomainBlock, col(UserDomainBlock.domain) == col(Account.domain))
        .where(col(UserDomainBlock.account_id) == reader),
    ]
    if hide_muted:
        hidden.append(
            select(col(AccountMute.target_account_id).label("id")).where(
                col(AccountMute.account_id) == reader, mute_in_force()
            )
        )
    return col(author_id).not_in(select(union_all(*hidden).subquery().c.id))


def accounts_shown_to(viewer: Viewer, account_id: Any) -> ColumnElement[bool]:
    """The condition that the account `account_id` names may appear in a list the viewer reads
    (who liked a post): not across a block, not muted, not on a domain the viewer hides."""
    return _not_hidden(viewer.account_id, account_id, hide_muted=True)


__all__ = ["EVERYONE", "Reader", "accounts_shown_to", "can_see", "mute_in_force", "reader_of", "visible_to"]
