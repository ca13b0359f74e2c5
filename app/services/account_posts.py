"""An account's posts as its profile lists them in the client API (Mastodon's
`/api/v1/accounts/:id/statuses`): newest first, paged by id, with the filters apps ask for.

The one visibility rule decides (visible_to, with mutes not hiding what was asked for by name):
a viewer blocked by the account, or blocking it, sees nothing of it, as on its profile page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, exists, select

from app.context import AppContext
from app.models import Account, MediaAttachment, Pin, Post, PostTag, Tag
from app.services.paged_lists import PageRequest
from app.services.viewer import Viewer
from app.services.visibility import visible_to

MAX_PINNED = 40


@dataclass(frozen=True)
class AccountPostFilter:
    pinned: bool = False
    exclude_replies: bool = False
    exclude_reblogs: bool = False
    only_media: bool = False
    # A hashtag name without '#'.
    tagged: str | None = None


async def account_posts(
    context: AppContext, viewer: Viewer, account: Account, page: PageRequest, wanted: AccountPostFilter
) -> list[Post]:
    visible = visible_to(viewer, hide_muted=False)
    if wanted.pinned:
        # Pinned posts in the order they were pinned (newest pin first); the list is short.
        query = (
            select(Post)
            .join(Pin, col(Pin.post_id) == col(Post.id))
            .where(col(Pin.account_id) == account.id, visible)
            .order_by(col(Pin.id).desc())
            .limit(min(page.limit, MAX_PINNED))
        )
        if page.max_id is not None:
            # One page holds every pin: a client asking for older ones gets none, and stops.
            return []
        async with context.sessions() as session:
            return list((await session.scalars(query)).all())
    query = select(Post).where(col(Post.account_id) == account.id, visible)
    if wanted.exclude_replies:
        # Threads the account continues itself stay, as on Mastodon.
        query = query.where(
            col(Post.in_reply_to_id).is_(None) | (col(Post.in_reply_to_account_id) == account.id)
        )
    if wanted.exclude_reblogs:
        query = query.where(col(Post.reblog_of_id).is_(None))
    if wanted.only_media:
        query = query.where(exists().where(col(MediaAttachment.post_id) == col(Post.id)))
    if wanted.tagged:
        query = query.where(
            exists()
            .where(col(PostTag.post_id) == col(Post.id))
            .where(col(PostTag.tag_id) == col(Tag.id), col(Tag.name) == wanted.tagged.lower())
        )
    async with context.sessions() as session:
        rows = list((await session.scalars(page.apply(query, col(Post.id)))).all())
    return page.newest_first(rows)


__all__ = ["AccountPostFilter", "account_posts"]
