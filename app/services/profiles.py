"""Reading local profiles and their collections (followers, following, posts, pinned posts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import ColumnElement, func
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, Follow, FollowState, Pin, Post
from app.services.viewer import Viewer
from app.services.visibility import EVERYONE, visible_to

PAGE_SIZE = 20
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    number: int
    has_next: bool


class ProfileService:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def local_account(self, username: str, *, include_deleted: bool = False) -> Account | None:
        async with self.context.sessions() as session:
            account = await session.scalar(
                select(Account).where(Account.username == username.lower(), col(Account.domain).is_(None))
            )
        if account is None or (account.deleted_at is not None and not include_deleted):
            return None
        return account

    async def followers(self, account: Account, page: int) -> Page[str]:
        return await self._relations(account, page, followers=True)

    async def following(self, account: Account, page: int) -> Page[str]:
        return await self._relations(account, page, followers=False)

    async def _relations(self, account: Account, page: int, *, followers: bool) -> Page[str]:
        own_side, other_side = (
            (Follow.followee_id, Follow.follower_id)
            if followers
            else (
                Follow.follower_id,
                Follow.followee_id,
            )
        )
        condition = (col(own_side) == account.id) & (col(Follow.state) == FollowState.ACCEPTED)
        async with self.context.sessions() as session:
            total = int(await session.scalar(select(func.count()).select_from(Follow).where(condition)) or 0)
            rows = await session.scalars(
                select(Account.uri)
                .join(Follow, col(Account.id) == col(other_side))
                .where(condition)
                .order_by(col(Follow.id).desc())
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE + 1)
            )
            uris = list(rows.all())
        return Page(items=uris[:PAGE_SIZE], total=total, number=page, has_next=len(uris) > PAGE_SIZE)

    async def public_posts(self, account: Account, page: int, viewer: Viewer) -> Page[Post]:
        """Public and unlisted posts and boosts that `viewer` may see, newest first: the outbox."""
        return await self._posts(
            account, page, col(Post.visibility).in_(EVERYONE) & visible_to(viewer, hide_muted=False)
        )

    async def posts(self, account: Account, page: int, viewer: Viewer) -> Page[Post]:
        """Posts and boosts that `viewer` may see, newest first: the profile page (a follower sees
        followers-only posts there too)."""
        return await self._posts(account, page, visible_to(viewer, hide_muted=False))

    async def _posts(self, account: Account, page: int, visible: ColumnElement[bool]) -> Page[Post]:
        condition = (col(Post.account_id) == account.id) & visible
        async with self.context.sessions() as session:
            total = int(await session.scalar(select(func.count()).select_from(Post).where(condition)) or 0)
            rows = await session.scalars(
                select(Post)
                .where(condition)
                .order_by(col(Post.id).desc())
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE + 1)
            )
            posts = list(rows.all())
        return Page(items=posts[:PAGE_SIZE], total=total, number=page, has_next=len(posts) > PAGE_SIZE)

    async def pinned_posts(self, account: Account, viewer: Viewer) -> list[Post]:
        """Pinned posts `viewer` may see: a pinned followers-only post is on the profile page and in
        the featured collection for the author's followers only, as at the post's own URL."""
        async with self.context.sessions() as session:
            rows = await session.scalars(
                select(Post)
                .join(Pin, col(Pin.post_id) == col(Post.id))
                .where(col(Pin.account_id) == account.id, visible_to(viewer, hide_muted=False))
                .order_by(col(Pin.id).desc())
            )
            return list(rows.all())

    async def counts(self, account: Account) -> tuple[int, int, int]:
        """(posts, followers, following) as shown on a profile."""
        async with self.context.sessions() as session:
            followers = await session.scalar(
                select(func.count())
                .select_from(Follow)
                .where(col(Follow.followee_id) == account.id, col(Follow.state) == FollowState.ACCEPTED)
            )
            following = await session.scalar(
                select(func.count())
                .select_from(Follow)
                .where(col(Follow.follower_id) == account.id, col(Follow.state) == FollowState.ACCEPTED)
            )
            posts = await session.scalar(
                select(func.count())
                .select_from(Post)
                .where(
                    col(Post.account_id) == account.id,
                    col(Post.deleted_at).is_(None),
                    col(Post.visibility).in_(EVERYONE),
                )
            )
        return int(posts or 0), int(followers or 0), int(following or 0)

    async def posts_by_id(self, post_ids: list[int], viewer: Viewer) -> dict[int, Post]:
        """The posts among `post_ids` that `viewer` may see (at their own URL: mutes do not hide them)."""
        if not post_ids:
            return {}
        async with self.context.sessions() as session:
            rows = await session.scalars(
                select(Post).where(col(Post.id).in_(post_ids), visible_to(viewer, hide_muted=False))
            )
            return {post.id: post for post in rows.all()}
