"""What the pages show of posts: each post with its author, boost, media and the viewer's own marks.

Read-only. The lists of posts are app.services.post_lists (each with the visibility rule in its
query); the cards are the read model's views.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select

from app.context import AppContext
from app.models import (
    Account,
    Follow,
    Post,
    TimelineEntry,
    Visibility,
)
from app.services.read_model import PostView, load_views
from app.services.viewer import Viewer

PUBLIC_VISIBILITIES = (Visibility.PUBLIC, Visibility.UNLISTED)


# A card on a page is the read model's view of a post.
PostCard = PostView


async def build_cards(
    context: AppContext, items: Sequence[Post], viewer: Viewer | None = None
) -> list[PostCard]:
    """Cards for posts (boosts resolved to what they boost), in the order given."""
    return await load_views(context, items, viewer)


async def post_by_id(context: AppContext, post_id: int) -> Post | None:
    async with context.sessions() as session:
        return await session.get(Post, post_id)


async def accounts_by_id(context: AppContext, account_ids: set[int]) -> dict[int, Account]:
    if not account_ids:
        return {}
    async with context.sessions() as session:
        rows = await session.scalars(select(Account).where(col(Account.id).in_(account_ids)))
        return {account.id: account for account in rows.all()}


async def account_by_id(context: AppContext, account_id: int) -> Account | None:
    async with context.sessions() as session:
        return await session.get(Account, account_id)


async def timeline_cursor(context: AppContext, account_id: int, post_id: int) -> int | None:
    """The home-timeline position of a post, to ask for the page after it."""
    async with context.sessions() as session:
        return await session.scalar(
            select(TimelineEntry.id).where(
                TimelineEntry.account_id == account_id, TimelineEntry.post_id == post_id
            )
        )


async def follow_state(context: AppContext, follower_id: int, followee_id: int) -> str | None:
    """ "accepted", "pending" or None: whether `follower_id` follows `followee_id`."""
    async with context.sessions() as session:
        state = await session.scalar(
            select(Follow.state).where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
        )
    return str(state) if state else None
