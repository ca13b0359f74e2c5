"""Facts about this instance as a whole: usage statistics and the admin-editable description."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, InstanceSetting, Post, User
from app.models.base import utcnow


@dataclass(frozen=True)
class UsageStats:
    users_total: int
    users_active_month: int
    users_active_halfyear: int
    local_posts: int


class InstanceService:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def usage(self) -> UsageStats:
        now = utcnow()

        def active_since(days: int) -> ColumnElement[bool]:
            since = now - timedelta(days=days)
            return or_(col(User.last_login_at) >= since, col(Account.last_post_at) >= since)

        base = (
            select(func.count())
            .select_from(User)
            .join(Account, col(Account.id) == col(User.account_id))
            .where(col(User.disabled_at).is_(None), col(Account.deleted_at).is_(None))
        )
        async with self.context.sessions() as session:
            total = await session.scalar(base)
            month = await session.scalar(base.where(active_since(30)))
            halfyear = await session.scalar(base.where(active_since(180)))
            posts = await session.scalar(
                select(func.count())
                .select_from(Post)
                .where(
                    col(Post.local).is_(True),
                    col(Post.deleted_at).is_(None),
                    col(Post.reblog_of_id).is_(None),
                )
            )
        return UsageStats(int(total or 0), int(month or 0), int(halfyear or 0), int(posts or 0))

    async def setting(self, key: str, default: str = "") -> str:
        async with self.context.sessions() as session:
            row = await session.get(InstanceSetting, key)
        return row.value if row else default

    async def name(self) -> str:
        return await self.setting("name", self.context.settings.instance_name)

    async def description(self) -> str:
        return await self.setting("description", self.context.settings.instance_description)
