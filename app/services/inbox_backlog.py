"""The inbox backlog: received activities the worker has not processed yet, and how long the
oldest of them has waited. Past INBOX_BACKLOG_LIMIT_SECONDS the inbox refuses new activities with
503 and Retry-After (senders retry later) rather than let the backlog grow without bound.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlmodel import col

from app.context import AppContext
from app.models import InboxItem, JobState
from app.models.base import utcnow

# The inbox asks at most this often; requests in between reuse the answer, so a busy inbox costs
# two small queries a second, not one per request.
BACKLOG_CHECK_SECONDS = 0.5
# What the inbox asks senders to wait: about the time a worker needs to make headway.
BACKPRESSURE_RETRY_AFTER = 30


@dataclass(frozen=True)
class InboxBacklog:
    # Activities waiting, due or not.
    size: int
    # How long the oldest due activity has waited past its time (0 when none is due).
    oldest_seconds: float


def _age(now: datetime, then: object) -> float:
    if isinstance(then, str):  # SQLite's MIN() bypasses the column type: text, UTC
        then = datetime.fromisoformat(then)
        if then.tzinfo is None:
            then = then.replace(tzinfo=UTC)
    if not isinstance(then, datetime):
        return 0.0
    return max(0.0, (now - then).total_seconds())


async def inbox_backlog(context: AppContext) -> InboxBacklog:
    """The backlog now, read from the database (two index range scans)."""
    now = utcnow()
    queued = col(InboxItem.state) == JobState.QUEUED
    async with context.sessions() as session:
        size = await session.scalar(select(func.count()).select_from(InboxItem).where(queued))
        first_due = await session.scalar(
            select(func.min(col(InboxItem.next_attempt_at))).where(
                queued, col(InboxItem.next_attempt_at) <= now
            )
        )
    return InboxBacklog(size=int(size or 0), oldest_seconds=_age(now, first_due))


class BacklogGate:
    """Whether the inbox is too far behind to accept more; the answer is reused for
    BACKLOG_CHECK_SECONDS, and concurrent requests share one query."""

    def __init__(self, context: AppContext, limit_seconds: float) -> None:
        self.context = context
        self.limit_seconds = limit_seconds
        self._checked_at = float("-inf")
        self._last: InboxBacklog | None = None
        self._pending: asyncio.Task[InboxBacklog] | None = None

    async def over_limit(self) -> InboxBacklog | None:
        """The backlog when it is past the limit, else None (always None when the limit is 0)."""
        if self.limit_seconds <= 0:
            return None
        if time.monotonic() - self._checked_at >= BACKLOG_CHECK_SECONDS:
            if self._pending is None or self._pending.done():
                self._pending = asyncio.create_task(self._refresh())
            try:
                await asyncio.shield(self._pending)
            except Exception:
                # The database is away: the inbox's own write will say so; do not refuse for it here.
                return None
        last = self._last
        return last if last is not None and last.oldest_seconds > self.limit_seconds else None

    async def _refresh(self) -> InboxBacklog:
        backlog = await inbox_backlog(self.context)
        self._last = backlog
        self._checked_at = time.monotonic()
        return backlog
