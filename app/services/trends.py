"""What is talked about here, simply and honestly: the hashtags of this server's public posts in
the last week (by how many accounts used them), its public posts of the week that drew the most
likes and boosts, accounts to follow (this server's most followed that the viewer does not
follow yet), the servers Herold knows, and weekly activity. No link previews are kept yet, so
there are no trending links. Every list may be empty."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, func
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, Follow, Post, PostTag, Tag, User, Visibility
from app.models.base import utcnow
from app.services.accounts import INSTANCE_ACTOR_USERNAME
from app.services.viewer import Viewer
from app.services.visibility import visible_to

WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class DayUse:
    day: datetime
    uses: int
    accounts: int


@dataclass(frozen=True)
class TrendingTag:
    tag: Tag
    history: list[DayUse]


@dataclass(frozen=True)
class WeekActivity:
    week: datetime
    statuses: int
    logins: int
    registrations: int


def _day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class TrendsService:
    def __init__(self, context: AppContext, viewer: Viewer) -> None:
        self.context = context
        self.viewer = viewer

    def _recent_public_local(self) -> list[ColumnElement[bool]]:
        return [
            col(Post.local).is_(True),
            col(Post.visibility) == Visibility.PUBLIC,
            col(Post.deleted_at).is_(None),
            col(Post.reblog_of_id).is_(None),
            col(Post.published_at) >= utcnow() - WINDOW,
        ]

    async def tags(self, *, limit: int, offset: int = 0) -> list[TrendingTag]:
        accounts = func.count(func.distinct(Post.account_id))
        async with self.context.sessions() as session:
            ranked = (
                await session.execute(
                    select(Tag, accounts)
                    .join(PostTag, col(PostTag.tag_id) == col(Tag.id))
                    .join(Post, col(Post.id) == col(PostTag.post_id))
                    .where(*self._recent_public_local())
                    .group_by(col(Tag.id))
                    .order_by(accounts.desc(), func.count(col(PostTag.id)).desc(), col(Tag.name))
                    .offset(offset)
                    .limit(limit)
                )
            ).all()
            tags = [row[0] for row in ranked]
            if not tags:
                return []
            used = (
                await session.execute(
                    select(PostTag.tag_id, Post.published_at, Post.account_id)
                    .join(Post, col(Post.id) == col(PostTag.post_id))
                    .where(col(PostTag.tag_id).in_([tag.id for tag in tags]), *self._recent_public_local())
                )
            ).all()
        today = _day(utcnow())
        days = [today - timedelta(days=back) for back in range(7)]
        uses: dict[tuple[int, datetime], int] = {}
        people: dict[tuple[int, datetime], set[int]] = {}
        for tag_id, published, account_id in used:
            key = (tag_id, _day(published))
            uses[key] = uses.get(key, 0) + 1
            people.setdefault(key, set()).add(account_id)
        return [
            TrendingTag(
                tag,
                [DayUse(day, uses.get((tag.id, day), 0), len(people.get((tag.id, day), ()))) for day in days],
            )
            for tag in tags
        ]

    async def posts(self, *, limit: int, offset: int = 0) -> list[Post]:
        """This week's public posts from here with the most likes and boosts (at least one)."""
        score = col(Post.favourites_count) + col(Post.reblogs_count)
        async with self.context.sessions() as session:
            rows = await session.scalars(
                select(Post)
                .where(*self._recent_public_local(), score > 0, visible_to(self.viewer))
                .order_by(score.desc(), col(Post.id).desc())
                .offset(offset)
                .limit(limit)
            )
            return list(rows.all())

    async def suggested_accounts(self, *, limit: int) -> list[Account]:
        """Discoverable accounts of this server the viewer does not follow, most followed first."""
        statement = select(Account).where(
            col(Account.domain).is_(None),
            col(Account.discoverable).is_(True),
            col(Account.deleted_at).is_(None),
            col(Account.suspended_at).is_(None),
            Account.username != INSTANCE_ACTOR_USERNAME,
        )
        if self.viewer.account is not None:
            me = self.viewer.account.id
            statement = statement.where(
                col(Account.id) != me,
                col(Account.id).not_in(select(Follow.followee_id).where(col(Follow.follower_id) == me)),
            )
        statement = statement.order_by(col(Account.followers_count).desc(), col(Account.username)).limit(
            limit
        )
        async with self.context.sessions() as session:
            return list((await session.scalars(statement)).all())

    async def peers(self) -> list[str]:
        """Domains of the accounts this server knows."""
        async with self.context.sessions() as session:
            rows = await session.scalars(
                select(Account.domain)
                .where(col(Account.domain).is_not(None))
                .distinct()
                .order_by(col(Account.domain))
            )
            return [domain for domain in rows.all() if domain]

    async def activity(self, weeks: int = 12) -> list[WeekActivity]:
        """Local posts, people who last logged in, and accounts made, per week (newest first).
        Herold keeps only each person's last log-in, so `logins` counts those whose last one fell
        in the week: a lower bound."""
        today = _day(utcnow())
        start = today - timedelta(days=today.weekday())
        found = []
        async with self.context.sessions() as session:
            for back in range(weeks):
                begin = start - timedelta(weeks=back)
                end = begin + timedelta(weeks=1)
                statuses = await session.scalar(
                    select(func.count())
                    .select_from(Post)
                    .where(
                        col(Post.local).is_(True),
                        col(Post.reblog_of_id).is_(None),
                        col(Post.published_at) >= begin,
                        col(Post.published_at) < end,
                    )
                )
                logins = await session.scalar(
                    select(func.count())
                    .select_from(User)
                    .where(col(User.last_login_at) >= begin, col(User.last_login_at) < end)
                )
                registrations = await session.scalar(
                    select(func.count())
                    .select_from(User)
                    .where(col(User.created_at) >= begin, col(User.created_at) < end)
                )
                found.append(
                    WeekActivity(begin, int(statuses or 0), int(logins or 0), int(registrations or 0))
                )
        return found


__all__ = ["DayUse", "TrendingTag", "TrendsService", "WeekActivity"]
