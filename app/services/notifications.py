"""Notifications for local accounts: who followed, mentioned, replied, boosted, liked or reacted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, Notification, NotificationType, Post, Visibility
from app.services import events
from app.services.batch_writes import new_row
from app.services.moderation import is_silenced
from app.services.muted_threads import outside_muted_conversations
from app.services.timelines import (
    AccountSummary,
    PostSummary,
    api_timestamp,
    hidden_from,
    local_follower_ids,
    summarize_account,
    summarize_posts,
)
from app.services.viewer import Viewer
from app.services.visibility import visible_to
from app.services.web_push import NewNotification, queue_pushes

DEFAULT_LIMIT = 40
MAX_LIMIT = 200


async def notify(
    session: AsyncSession,
    *,
    account: Account,
    from_account: Account,
    kind: NotificationType,
    post_id: int | None = None,
    detail: str | None = None,
) -> None:
    """Add a notification in the caller's transaction; only local accounts get them, and never from themselves."""
    if account.domain is not None or account.id == from_account.id:
        return
    notification = Notification(
        account_id=account.id, from_account_id=from_account.id, type=kind, post_id=post_id, detail=detail
    )
    session.add(notification)
    await queue_pushes(session, [NewNotification(notification.id, account.id, kind)])
    events.announce(
        session, [events.NotificationAdded(account.id, from_account.id, kind, post_id, notification.id)]
    )


def notify_local_ids(
    session: AsyncSession,
    account_ids: list[int],
    *,
    from_account: Account,
    kind: NotificationType,
    post_id: int,
) -> None:
    """`notify` for local accounts known by id (never the sender itself), in the caller's transaction."""
    wanted = [account_id for account_id in account_ids if account_id != from_account.id]
    for account_id in wanted:
        session.add(
            Notification(account_id=account_id, from_account_id=from_account.id, type=kind, post_id=post_id)
        )
    events.announce(
        session,
        [events.NotificationAdded(account_id, from_account.id, kind, post_id) for account_id in wanted],
    )


def announces_to_followers(visibility: str, replied_to_account_id: int | None, author_id: int) -> bool:
    """Whether followers who asked to be told of each post hear of this one: not a direct message,
    and not a reply to someone else (a thread the author continues counts), as on Mastodon."""
    return visibility != Visibility.DIRECT and replied_to_account_id in (None, author_id)


@dataclass(frozen=True)
class SenderReach:
    """Which local accounts one sender may notify: none that block or mute it (or hide its domain),
    and, when its domain is silenced, only those who follow it (Mastodon's rule: a silenced server's
    mentions, replies, likes and boosts reach only its accounts' followers; follow requests, which
    are how one gets there, are never held back)."""

    hidden: frozenset[int]
    # None unless the sender's domain is silenced.
    followers_only: frozenset[int] | None = None

    def reaches(self, account_id: int) -> bool:
        return account_id not in self.hidden and (
            self.followers_only is None or account_id in self.followers_only
        )


async def sender_reach(session: AsyncSession, context: AppContext, sender: Account) -> SenderReach:
    hidden = frozenset(await hidden_from(session, sender, notifications=True))
    if not await is_silenced(context, sender):
        return SenderReach(hidden)
    return SenderReach(hidden, frozenset(await local_follower_ids(session, sender)))


def notification_row(
    account_id: int,
    from_account_id: int,
    kind: NotificationType,
    post_id: int | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    """A notification as a row for a WriteBatch (the caller has checked the account is local); in a
    post's rows, no `post_id` means the post itself."""
    return new_row(
        Notification,
        account_id=account_id,
        from_account_id=from_account_id,
        type=kind,
        post_id=post_id,
        detail=detail,
    )


@dataclass(frozen=True)
class NotificationView:
    notification: Notification
    account: AccountSummary
    status: PostSummary | None

    def to_dict(self) -> dict[str, Any]:
        notification = self.notification
        document: dict[str, Any] = {
            "id": str(notification.id),
            "type": notification.type,
            "created_at": api_timestamp(notification.created_at),
            "read": notification.read_at is not None,
            "account": self.account.to_dict(),
            "status": self.status.to_dict() if self.status else None,
        }
        if notification.type == NotificationType.REACTION:
            document["emoji"] = notification.detail
        return document


class NotificationService:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def for_account(
        self, account: Account, *, limit: int = DEFAULT_LIMIT, max_id: int | None = None
    ) -> list[NotificationView]:
        """Newest first; page further back with `max_id`."""
        limit = max(1, min(limit, MAX_LIMIT))
        query = (
            select(Notification, Account)
            .join(Account, col(Account.id) == col(Notification.from_account_id))
            .where(col(Notification.account_id) == account.id, outside_muted_conversations(account.id))
            .order_by(col(Notification.id).desc())
            .limit(limit)
        )
        if max_id is not None:
            query = query.where(col(Notification.id) < max_id)
        reader = Viewer(account=account, acting_ids=frozenset({account.id}))
        async with self.context.sessions() as session:
            rows = (await session.execute(query)).all()
            # Only posts the account may still see (not deleted, no block since): the rule's SQL form.
            mentioned = [notification.post_id for notification, _ in rows if notification.post_id]
            shown = (
                set(
                    (
                        await session.scalars(
                            select(Post.id).where(
                                col(Post.id).in_(mentioned), visible_to(reader, hide_muted=False)
                            )
                        )
                    ).all()
                )
                if mentioned
                else set()
            )
            posts = await summarize_posts(
                session, [post_id for post_id in mentioned if post_id in shown], reader
            )
        return [
            NotificationView(
                notification=notification,
                account=summarize_account(sender),
                status=posts.get(notification.post_id) if notification.post_id else None,
            )
            for notification, sender in rows
        ]
