"""Notifications for the apps: one by id, dismissing, clearing, the unread count, and Mastodon
4.3's grouped notifications (likes and boosts of one post, and follows, that arrived within the
same twelve hours make one group).

A group's key is computed from the notification (its kind, its post, its twelve-hour window), so
nothing extra is stored. A page of groups covers one contiguous run of notifications: they are
read newest first (a bounded window of them) and taken into groups until one more group would
exceed the limit; the next page starts below the last one taken. A group may so appear on two
pages, as Mastodon's may, each time with the ids it has on that page (`page_min_id`,
`page_max_id`). Loading a page costs the same statements whatever its size.

Every list hides notifications about posts the account may no longer see, and about threads it
muted (app.services.muted_threads), as the v1 list and the web page do.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, Marker, Notification, NotificationType, Post
from app.services.errors import NotFound
from app.services.muted_threads import outside_muted_conversations
from app.services.paged_lists import STATEMENTS_KEPT, PageRequest, PageShape, visible_among
from app.services.viewer import Viewer
from app.services.visibility import visible_to

GROUP_SPAN_HOURS = 12
# Kinds that group by default, as Mastodon's GROUPABLE_NOTIFICATION_TYPES.
GROUPABLE = (NotificationType.FAVOURITE, NotificationType.REBLOG, NotificationType.FOLLOW)
SAMPLE_ACCOUNTS = 8
# Notifications read to fill one page of groups, per group asked for.
WINDOW_PER_GROUP = 5
MAX_UNREAD_COUNT = 1000


@dataclass(frozen=True, slots=True)
class GroupedNotification:
    """What grouping and the group entities read of a notification: its columns, not the ORM
    entity (a page reads a window of 200, and building entities cost more than the SQL)."""

    id: int
    type: str
    post_id: int | None
    from_account_id: int
    created_at: datetime


# The columns of GroupedNotification, in its order.
_GROUPED_COLUMNS = (
    col(Notification.id),
    col(Notification.type),
    col(Notification.post_id),
    col(Notification.from_account_id),
    col(Notification.created_at),
)


def group_key(notification: Notification | GroupedNotification, grouped: frozenset[str] | None = None) -> str:
    """Mastodon's form: `favourite-<post>-<hour>`, `follow-<hour>`, `ungrouped-<id>`."""
    kinds = frozenset(GROUPABLE) if grouped is None else grouped
    if notification.type not in kinds or notification.type not in GROUPABLE:
        return f"ungrouped-{notification.id}"
    hours = int(notification.created_at.timestamp()) // 3600
    bucket = hours - hours % GROUP_SPAN_HOURS
    if notification.type == NotificationType.FOLLOW:
        return f"follow-{bucket}"
    return f"{notification.type}-{notification.post_id}-{bucket}"


def _id(text: str) -> int:
    """A number in a group key: digits only, and within the database's 64 bits."""
    if not text.isdigit() or int(text) >= 2**63:
        raise ValueError(text)
    return int(text)


def _key_condition(key: str) -> ColumnElement[bool]:
    """The notifications a group key names; NotFound for a key that is not one of ours."""
    kind, _, rest = key.partition("-")
    try:
        if kind == "ungrouped":
            return col(Notification.id) == _id(rest)
        if kind == NotificationType.FOLLOW:
            post_id, bucket = None, _id(rest)
        elif kind in (NotificationType.FAVOURITE, NotificationType.REBLOG):
            post_text, _, bucket_text = rest.partition("-")
            post_id, bucket = _id(post_text), _id(bucket_text)
        else:
            raise ValueError(kind)
        start = datetime.fromtimestamp(bucket * 3600, UTC)
        end = datetime.fromtimestamp((bucket + GROUP_SPAN_HOURS) * 3600, UTC)
    except (ValueError, OverflowError, OSError):
        raise NotFound("Record not found") from None
    conditions = [
        col(Notification.type) == kind,
        col(Notification.created_at) >= start,
        col(Notification.created_at) < end,
    ]
    if post_id is not None:
        conditions.append(col(Notification.post_id) == post_id)
    return and_(*conditions)


@dataclass
class NotificationGroup:
    key: str
    # Newest first, within the page.
    notifications: list[GroupedNotification] = field(default_factory=list)

    @property
    def latest(self) -> GroupedNotification:
        return self.notifications[0]

    @property
    def sender_ids(self) -> list[int]:
        return list(dict.fromkeys(row.from_account_id for row in self.notifications))


@dataclass(frozen=True)
class GroupedPage:
    groups: list[NotificationGroup]
    # The senders' rows: read by `group` only (whose senders are listed whole); a page of
    # groups names them by id (NotificationGroup.sender_ids).
    accounts: dict[int, Account]
    # The posts the groups are about that the account may still see.
    posts: dict[int, Post]
    # The ids of the notifications the page covers (for its Link header).
    page_ids: list[int]


@dataclass(frozen=True)
class NotificationFilter:
    """Which notifications a list shows (None: every kind listed)."""

    types: frozenset[str] | None = None
    exclude_types: frozenset[str] = frozenset()
    from_account_id: int | None = None

    def conditions(self, account_id: int) -> list[ColumnElement[bool]]:
        found = [col(Notification.account_id) == account_id, outside_muted_conversations(account_id)]
        if self.types is not None:
            found.append(col(Notification.type).in_(self.types))
        if self.exclude_types:
            found.append(col(Notification.type).not_in(self.exclude_types))
        if self.from_account_id is not None:
            found.append(col(Notification.from_account_id) == self.from_account_id)
        return found


class NotificationInbox:
    """The notifications of the account the viewer acts as."""

    def __init__(self, context: AppContext, viewer: Viewer) -> None:
        self.context = context
        self.viewer = viewer

    @property
    def _account_id(self) -> int:
        if self.viewer.account is None:
            raise NotFound("Record not found")
        return self.viewer.account.id

    async def one(self, notification_id: int) -> tuple[Notification, Account, Post | None]:
        """Another account's notification, or one about a post no longer visible, is not found."""
        async with self.context.sessions() as session:
            row = await session.scalar(
                select(Notification).where(
                    col(Notification.id) == notification_id,
                    *NotificationFilter().conditions(self._account_id),
                )
            )
            sender = await session.get(Account, row.from_account_id) if row is not None else None
            post = (
                await session.scalar(
                    select(Post).where(col(Post.id) == row.post_id, visible_to(self.viewer, hide_muted=False))
                )
                if row is not None and row.post_id is not None
                else None
            )
        if row is None or sender is None or (row.post_id is not None and post is None):
            raise NotFound("Record not found")
        return row, sender, post

    async def dismiss(self, notification_id: int) -> None:
        async with self.context.sessions() as session:
            removed = await session.execute(
                delete(Notification).where(
                    col(Notification.id) == notification_id, col(Notification.account_id) == self._account_id
                )
            )
            await session.commit()
        if not getattr(removed, "rowcount", 0):
            raise NotFound("Record not found")

    async def dismiss_group(self, key: str) -> None:
        condition = _key_condition(key)
        async with self.context.sessions() as session:
            await session.execute(
                delete(Notification).where(col(Notification.account_id) == self._account_id, condition)
            )
            await session.commit()

    async def clear(self) -> None:
        async with self.context.sessions() as session:
            await session.execute(
                delete(Notification).where(col(Notification.account_id) == self._account_id)
            )
            await session.commit()

    async def _read_up_to(self) -> int:
        async with self.context.sessions() as session:
            marker = await session.scalar(
                select(Marker.last_read_id).where(
                    col(Marker.account_id) == self._account_id, col(Marker.timeline) == "notifications"
                )
            )
        return int(marker or 0)

    async def unread_count(
        self, only: NotificationFilter, *, limit: int, grouped: frozenset[str] | None = None
    ) -> int:
        """Notifications newer than the account's notifications marker (at most `limit`); with
        `grouped`, the groups they make."""
        read_up_to = await self._read_up_to()
        query = (
            select(Notification)
            .where(*only.conditions(self._account_id), col(Notification.id) > read_up_to)
            .order_by(col(Notification.id).desc())
        )
        async with self.context.sessions() as session:
            if grouped is None:
                counted = select(func.count()).select_from(query.limit(limit).subquery())
                return int(await session.scalar(counted) or 0)
            rows = (await session.scalars(query.limit(limit * WINDOW_PER_GROUP))).all()
        return min(limit, len({group_key(row, grouped) for row in rows}))

    async def groups(
        self, only: NotificationFilter, page: PageRequest, *, grouped: frozenset[str]
    ) -> GroupedPage:
        query = _window_query(self._account_id, only, page.shape)
        async with self.context.sessions() as session:
            window = page.parameters() | {"page_limit": page.limit * WINDOW_PER_GROUP}
            rows = [GroupedNotification(*row) for row in (await session.execute(query, window)).all()]
            groups: dict[str, NotificationGroup] = {}
            taken: list[GroupedNotification] = []
            for row in rows:
                key = group_key(row, grouped)
                if key not in groups:
                    if len(groups) == page.limit:
                        break
                    groups[key] = NotificationGroup(key)
                groups[key].notifications.append(row)
                taken.append(row)
            ordered = list(groups.values())
            if page.min_id is not None:  # read oldest first
                for group in ordered:
                    group.notifications.reverse()
                ordered.sort(key=lambda group: group.latest.id, reverse=True)
            posts = await visible_among(
                session, self.viewer, {row.post_id for row in taken if row.post_id is not None}
            )
        shown = [group for group in ordered if group.latest.post_id is None or group.latest.post_id in posts]
        # The senders are not read here: the client API shows them from its kept entities, and
        # leaves out a group whose latest sender is gone.
        return GroupedPage(shown, {}, posts, [row.id for row in taken])

    async def group(self, key: str) -> GroupedPage:
        """One group, whole (as `/api/v2/notifications/:group_key` answers)."""
        condition = _key_condition(key)
        async with self.context.sessions() as session:
            rows = list(
                GroupedNotification(*row)
                for row in (
                    await session.execute(
                        sql_select(*_GROUPED_COLUMNS)
                        .where(*NotificationFilter().conditions(self._account_id), condition)
                        .order_by(col(Notification.id).desc())
                        .limit(200)
                    )
                ).all()
            )
            if not rows:
                raise NotFound("Record not found")
            found = NotificationGroup(key, rows)
            accounts = await _accounts(session, set(found.sender_ids))
            post_id = found.latest.post_id
            posts = (
                {
                    post.id: post
                    for post in (
                        await session.scalars(
                            select(Post).where(
                                col(Post.id) == post_id, visible_to(self.viewer, hide_muted=False)
                            )
                        )
                    ).all()
                }
                if post_id is not None
                else {}
            )
        if post_id is not None and post_id not in posts:
            raise NotFound("Record not found")
        return GroupedPage([found], accounts, posts, [row.id for row in rows])


@lru_cache(maxsize=STATEMENTS_KEPT)
def _window_query(account_id: int, only: NotificationFilter, shape: PageShape) -> Select[Any]:
    """The statement reading a page's window of notifications, built once per account, filter
    and page shape (apps poll it all day; see app.services.paged_lists._home_query)."""
    query = sql_select(*_GROUPED_COLUMNS).where(*only.conditions(account_id))
    window: Select[Any] = shape.apply(query, col(Notification.id))
    return window


async def _accounts(session: AsyncSession, account_ids: Collection[int]) -> dict[int, Account]:
    if not account_ids:
        return {}
    rows = await session.scalars(select(Account).where(col(Account.id).in_(account_ids)))
    return {account.id: account for account in rows.all()}


__all__ = [
    "GROUPABLE",
    "GroupedNotification",
    "GroupedPage",
    "NotificationFilter",
    "NotificationGroup",
    "NotificationInbox",
    "group_key",
]
