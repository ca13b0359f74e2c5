"""The transactional outbox: an activity and its delivery jobs are written in the caller's transaction.

Whatever a service commits (a post, a follow, an Accept) is delivered, even if the process dies
right after the commit: the worker finds the jobs in the database. Who receives what is decided
here too; the services reach both through app.federation.publisher.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.activitypub.parsers import InvalidObject, authority
from app.models import Account, DeliveryJob, Follow, FollowState, JobState, OutboxActivity, Post
from app.models.base import new_ids, utcnow


async def queue_activity(
    session: AsyncSession,
    *,
    activity: dict[str, Any],
    signer: Account,
    inboxes: Iterable[str],
    reuse: bool = False,
) -> OutboxActivity:
    """Store `activity` once and one delivery job per distinct inbox; the caller commits.

    With `reuse`, an activity sent before under the same id (a Follow sent again) is delivered
    anew instead of being refused as a duplicate.
    """
    stored = None
    if reuse:
        stored = await session.scalar(select(OutboxActivity).where(OutboxActivity.uri == str(activity["id"])))
    if stored is None:
        stored = OutboxActivity(
            uri=str(activity["id"]),
            activity_type=str(activity["type"]),
            account_id=signer.id,
            payload=activity,
        )
        session.add(stored)
        await session.flush()
    now = utcnow()
    targets: dict[str, str] = {}
    for inbox in inboxes:
        if not inbox or inbox in targets:
            continue
        try:
            targets[inbox] = authority(inbox)
        except InvalidObject:
            continue
    rows = [
        {
            "id": job_id,
            "activity_id": stored.id,
            "inbox_url": inbox,
            "host": host,
            "state": JobState.QUEUED,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for job_id, (inbox, host) in zip(new_ids(len(targets)), targets.items(), strict=True)
    ]
    if rows:
        # Sent as multi-row INSERTs (SQLAlchemy batches them): thousands of jobs, a handful of statements.
        await session.execute(insert(DeliveryJob), rows)
    return stored


def preferred_inbox(account: Account) -> str:
    """Where one delivery reaches an actor: its server's shared inbox when it has one, as Mastodon does."""
    return account.shared_inbox_url or account.inbox_url


def remote_inboxes(accounts: Iterable[Account]) -> list[str]:
    """Preferred inboxes of the remote, not gone, accounts among `accounts` (local ones need no delivery)."""
    inboxes: dict[str, None] = {}
    for account in accounts:
        if account.domain is not None and account.gone_at is None and preferred_inbox(account):
            inboxes[preferred_inbox(account)] = None
    return list(inboxes)


async def follower_inboxes(session: AsyncSession, account: Account) -> list[str]:
    """Where to deliver to reach every remote follower: shared inboxes, deduplicated; personal ones otherwise."""
    rows = await session.execute(
        select(Account.shared_inbox_url, Account.inbox_url)
        .join(Follow, col(Follow.follower_id) == col(Account.id))
        .where(
            col(Follow.followee_id) == account.id,
            col(Follow.state) == FollowState.ACCEPTED,
            col(Account.domain).is_not(None),
            col(Account.gone_at).is_(None),
        )
    )
    inboxes: dict[str, None] = {}
    for shared, personal in rows.all():
        inboxes[shared or personal] = None
    return list(inboxes)


async def post_inboxes(
    session: AsyncSession, author: Account, *, to_followers: bool, accounts: Iterable[Account]
) -> list[str]:
    """Recipients of a post's activities: followers' servers (unless direct) and the given accounts
    (mentioned, replied to)."""
    inboxes = await follower_inboxes(session, author) if to_followers else []
    return list(dict.fromkeys([*inboxes, *remote_inboxes(accounts)]))


async def booster_inboxes(session: AsyncSession, post: Post) -> list[str]:
    """Servers of remote accounts that boosted `post`: they hold a copy an Update or Delete must reach."""
    rows = await session.scalars(
        select(Account)
        .join(Post, col(Post.account_id) == col(Account.id))
        .where(col(Post.reblog_of_id) == post.id, col(Account.domain).is_not(None))
    )
    return remote_inboxes(rows.all())
