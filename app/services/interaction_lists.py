"""Who liked and who boosted a post, paged as Mastodon pages them (by the like's or the boost's
id). The caller has checked the viewer may see the post; boosts the viewer may not see (the
booster blocked or muted, a hidden domain) are left out by the one visibility rule."""

from __future__ import annotations

from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, Favourite, Post
from app.services.paged_lists import PageRequest
from app.services.viewer import Viewer
from app.services.visibility import visible_to


async def favourited_by(
    context: AppContext, viewer: Viewer, post: Post, page: PageRequest
) -> tuple[list[Account], list[int]]:
    """The accounts that liked `post`, newest like first, and the likes' ids (for paging)."""
    query = (
        select(Favourite.id, Account)
        .join(Account, col(Account.id) == col(Favourite.account_id))
        .where(col(Favourite.post_id) == post.id, col(Account.deleted_at).is_(None))
    )
    async with context.sessions() as session:
        rows = page.newest_first(list((await session.execute(page.apply(query, col(Favourite.id)))).all()))
    return [account for _, account in rows], [favourite_id for favourite_id, _ in rows]


async def reblogged_by(
    context: AppContext, viewer: Viewer, post: Post, page: PageRequest
) -> tuple[list[Account], list[int]]:
    """The accounts that boosted `post`, newest boost first, and the boosts' ids (for paging)."""
    query = (
        select(Post.id, Account)
        .join(Account, col(Account.id) == col(Post.account_id))
        .where(col(Post.reblog_of_id) == post.id, visible_to(viewer), col(Account.deleted_at).is_(None))
    )
    async with context.sessions() as session:
        rows = page.newest_first(list((await session.execute(page.apply(query, col(Post.id)))).all()))
    return [account for _, account in rows], [boost_id for boost_id, _ in rows]


async def favourites_of(
    context: AppContext, viewer: Viewer, page: PageRequest
) -> tuple[list[Post], list[int]]:
    """The posts the viewer's account liked and may still see, newest like first, and the likes'
    ids (what the pages are counted in)."""
    if viewer.account is None:
        return [], []
    query = (
        select(Favourite.id, Post)
        .join(Post, col(Post.id) == col(Favourite.post_id))
        .where(col(Favourite.account_id) == viewer.account.id, visible_to(viewer, hide_muted=False))
    )
    async with context.sessions() as session:
        rows = page.newest_first(list((await session.execute(page.apply(query, col(Favourite.id)))).all()))
    return [post for _, post in rows], [favourite_id for favourite_id, _ in rows]


__all__ = ["favourited_by", "favourites_of", "reblogged_by"]
