"""The transactional outbox: an activity and its delivery jobs are written in the caller's transaction.

Whatever a service commits (a post, a follow, an Accept) is delivered, even if the process dies
right after the commit: the worker finds the jobs in the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import col, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.activitypub.parsers import InvalidObject, authority
from app.context import AppContext
from app.federation.worker import DELIVERY_QUEUE
from app.models import Account, DeliveryJob, Follow, FollowState, OutboxActivity


async def queue_activity(
    session: AsyncSession, *, activity: dict[str, Any], signer: Account, inboxes: Iterable[str]
) -> OutboxActivity:
    """Store `activity` once and one delivery job per distinct inbox; the caller commits."""
    stored = OutboxActivity(
        uri=str(activity["id"]), activity_type=str(activity["type"]), account_id=signer.id, payload=activity
    )
    session.add(stored)
    await session.flush()
    seen: set[str] = set()
    for inbox in inboxes:
        if not inbox or inbox in seen:
            continue
        seen.add(inbox)
        try:
            host = authority(inbox)
        except InvalidObject:
            continue
        session.add(DeliveryJob(activity_id=stored.id, inbox_url=inbox, host=host))
    return stored


def notify_delivery(context: AppContext) -> None:
    """Wake this process's worker after the commit, so delivery starts at once."""
    context.work.notify(DELIVERY_QUEUE)


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
