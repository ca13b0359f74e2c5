"""Hashtags an account follows and features.

A followed tag's public posts reach the follower's home timeline as Mastodon delivers them: the
posts written here and those received from elsewhere, at the moment they arrive
(`tag_follower_ids` is asked by the posting and receiving paths). Featured tags are shown on the
profile with how often and when the account last used them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, FeaturedTag, FollowedTag, Post, PostTag, Tag, Visibility
from app.models.base import new_id, utcnow
from app.services.errors import Invalid, NotFound
from app.services.timelines import ensure_tags, insert_ignoring_duplicates
from app.services.viewer import Viewer

# Letters, digits, underscores (and the middle dot Mastodon allows), not only digits.
TAG_NAME = re.compile(r"(?=.*[^\d_])[\w·]{1,255}")
MAX_FEATURED = 10


def tag_name(value: str) -> str:
    name = value.strip().removeprefix("#").lower()
    if not TAG_NAME.fullmatch(name):
        raise Invalid("name: not a valid hashtag")
    return name


@dataclass(frozen=True)
class FeaturedTagView:
    featured: FeaturedTag
    name: str
    posts_count: int
    last_post_at: datetime | None


class HashtagService:
    def __init__(self, context: AppContext, viewer: Viewer) -> None:
        self.context = context
        self.viewer = viewer

    def _me(self) -> Account:
        if self.viewer.account is None:
            raise NotFound("Record not found")
        return self.viewer.account

    async def find(self, name: str) -> Tag:
        try:
            normalized = tag_name(name)
        except Invalid:
            raise NotFound("Record not found") from None
        async with self.context.sessions() as session:
            tag = await session.scalar(select(Tag).where(col(Tag.name) == normalized))
        if tag is None:
            raise NotFound("Record not found")
        return tag

    async def follow(self, name: str) -> Tag:
        me = self._me()
        normalized = tag_name(name)
        async with self.context.sessions() as session:
            tag_id = (await ensure_tags(session, [normalized]))[normalized]
            await session.execute(
                insert_ignoring_duplicates(
                    session,
                    FollowedTag,
                    [{"id": new_id(), "account_id": me.id, "tag_id": tag_id, "created_at": utcnow()}],
                )
            )
            await session.commit()
            tag = await session.get(Tag, tag_id)
        assert tag is not None
        return tag

    async def unfollow(self, name: str) -> Tag:
        me = self._me()
        tag = await self.find(name)
        async with self.context.sessions() as session:
            await session.execute(
                delete(FollowedTag).where(
                    col(FollowedTag.account_id) == me.id, col(FollowedTag.tag_id) == tag.id
                )
            )
            await session.commit()
        return tag

    async def followed(self, *, limit: int, max_id: int | None = None) -> list[tuple[FollowedTag, Tag]]:
        """The viewer's followed tags, newest first, paged by the follow's id."""
        me = self._me()
        statement = (
            select(FollowedTag, Tag)
            .join(Tag, col(Tag.id) == col(FollowedTag.tag_id))
            .where(col(FollowedTag.account_id) == me.id)
        )
        if max_id is not None:
            statement = statement.where(col(FollowedTag.id) < max_id)
        statement = statement.order_by(col(FollowedTag.id).desc()).limit(limit)
        async with self.context.sessions() as session:
            return [(row[0], row[1]) for row in (await session.execute(statement)).all()]

    async def followed_ids(self, tag_ids: Iterable[int]) -> set[int]:
        ids = list(tag_ids)
        if self.viewer.account is None or not ids:
            return set()
        async with self.context.sessions() as session:
            rows = await session.scalars(
                select(FollowedTag.tag_id).where(
                    col(FollowedTag.account_id) == self.viewer.account.id, col(FollowedTag.tag_id).in_(ids)
                )
            )
            return set(rows.all())

    # Featured tags -------------------------------------------------------------------------

    async def featured_of(self, account_id: int) -> list[FeaturedTagView]:
        async with self.context.sessions() as session:
            rows = (
                await session.execute(
                    select(FeaturedTag, Tag.name)
                    .join(Tag, col(Tag.id) == col(FeaturedTag.tag_id))
                    .where(col(FeaturedTag.account_id) == account_id)
                    .order_by(col(FeaturedTag.id))
                )
            ).all()
            usage = await _usage(session, account_id, [featured.tag_id for featured, _ in rows])
        return [
            FeaturedTagView(featured, name, *usage.get(featured.tag_id, (0, None))) for featured, name in rows
        ]

    async def feature(self, name: str) -> FeaturedTagView:
        me = self._me()
        normalized = tag_name(name)
        async with self.context.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(FeaturedTag).where(col(FeaturedTag.account_id) == me.id)
            )
            tag_id = (await ensure_tags(session, [normalized]))[normalized]
            existing = await session.scalar(
                select(FeaturedTag).where(
                    col(FeaturedTag.account_id) == me.id, col(FeaturedTag.tag_id) == tag_id
                )
            )
            if existing is not None:
                raise Invalid("name: this hashtag is featured already")
            if (count or 0) >= MAX_FEATURED:
                raise Invalid(f"name: at most {MAX_FEATURED} hashtags may be featured")
            featured = FeaturedTag(account_id=me.id, tag_id=tag_id)
            session.add(featured)
            await session.commit()
            await session.refresh(featured)
            usage = await _usage(session, me.id, [tag_id])
        return FeaturedTagView(featured, normalized, *usage.get(tag_id, (0, None)))

    async def unfeature(self, featured_id: int) -> None:
        me = self._me()
        async with self.context.sessions() as session:
            result = await session.execute(
                delete(FeaturedTag).where(
                    col(FeaturedTag.id) == featured_id, col(FeaturedTag.account_id) == me.id
                )
            )
            await session.commit()
        if not getattr(result, "rowcount", 0):
            raise NotFound("Record not found")

    async def suggestions(self, limit: int = 10) -> list[Tag]:
        """The hashtags the viewer used most in its recent posts and does not feature yet."""
        me = self._me()
        async with self.context.sessions() as session:
            recent = (
                select(Post.id)
                .where(col(Post.account_id) == me.id, col(Post.deleted_at).is_(None))
                .order_by(col(Post.id).desc())
                .limit(200)
                .subquery()
            )
            featured = select(FeaturedTag.tag_id).where(col(FeaturedTag.account_id) == me.id)
            rows = await session.execute(
                select(Tag, func.count(col(PostTag.id)).label("uses"))
                .join(PostTag, col(PostTag.tag_id) == col(Tag.id))
                .where(col(PostTag.post_id).in_(select(recent.c.id)), col(Tag.id).not_in(featured))
                .group_by(col(Tag.id))
                .order_by(func.count(col(PostTag.id)).desc(), col(Tag.name))
                .limit(limit)
            )
            return [row[0] for row in rows.all()]


async def _usage(
    session: AsyncSession, account_id: int, tag_ids: list[int]
) -> dict[int, tuple[int, datetime | None]]:
    """How many public posts of the account carry each tag, and when the last was published."""
    if not tag_ids:
        return {}
    rows = await session.execute(
        select(PostTag.tag_id, func.count(col(Post.id)), func.max(Post.published_at))
        .join(Post, col(Post.id) == col(PostTag.post_id))
        .where(
            col(PostTag.tag_id).in_(tag_ids),
            col(Post.account_id) == account_id,
            col(Post.deleted_at).is_(None),
            col(Post.visibility).in_([Visibility.PUBLIC, Visibility.UNLISTED]),
        )
        .group_by(col(PostTag.tag_id))
    )
    return {tag_id: (count, last) for tag_id, count, last in rows.all()}


async def tag_follower_ids(session: AsyncSession, tag_names: Iterable[str]) -> set[int]:
    """Local accounts following any of these hashtags (for delivering a public post to their home)."""
    names = sorted({name.lower() for name in tag_names})
    if not names:
        return set()
    rows = await session.scalars(
        select(FollowedTag.account_id)
        .join(Tag, col(Tag.id) == col(FollowedTag.tag_id))
        .where(col(Tag.name).in_(names))
    )
    return set(rows.all())


__all__ = ["FeaturedTagView", "HashtagService", "tag_follower_ids", "tag_name"]
