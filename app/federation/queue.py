"""Database-backed job queues: work survives restarts, and several workers share it safely.

A worker claims a batch by setting a lease (`locked_until`, and its name in `locked_by`) in one
statement; on PostgreSQL the candidate rows are picked with `FOR UPDATE SKIP LOCKED`, so concurrent
workers never claim the same row. A worker that dies has its jobs taken over as soon as it is seen
gone (app.federation.takeover), or at the latest when its lease runs out (at-least-once). SQLite
has one writer at a time, so the same statement is safe there as well.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, or_, select, update
from sqlmodel import col

from app.context import AppContext
from app.db import write_session
from app.models import JobState
from app.models.base import utcnow

Job = TypeVar("Job")


@dataclass(frozen=True)
class QueueSpec(Generic[Job]):
    """One kind of job: its table, how many run at once, and the function that runs one."""

    name: str
    model: type[Any]
    handler: Callable[[Job], Awaitable[None]]
    concurrency: int
    batch_size: int
    lease: timedelta
    # Run once before the worker claims the first job (to start what the handler needs).
    start: Callable[[], Awaitable[None]] | None = None
    # How jobs are claimed, as (context, limit, lease, holder) -> jobs: `claim_jobs` (ORM objects) unless
    # the queue reads its jobs more cheaply.
    claim: Callable[[AppContext, int, timedelta, str | None], Awaitable[list[Job]]] | None = None
    # Run on each claimed batch before its jobs' handlers: work done once for the batch rather
    # than once per job (the deliverer signs a batch in one go). A job it leaves unprepared (it
    # failed) is its handler's to prepare.
    prepare: Callable[[list[Job]], Awaitable[None]] | None = None


def due_jobs(model: type[Any], *, now: datetime, limit: int) -> Select[Any]:
    """The ids of up to `limit` jobs of `model` that are due and not leased, locked for the
    claiming transaction (skipping rows another worker is claiming)."""
    table: Any = model
    return (
        select(table.id)
        .where(
            col(table.state) == JobState.QUEUED,
            col(table.next_attempt_at) <= now,
            or_(col(table.locked_until).is_(None), col(table.locked_until) < now),
        )
        .order_by(col(table.next_attempt_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


async def claim_jobs(
    context: AppContext, model: type[Job], *, limit: int, lease: timedelta, holder: str | None = None
) -> list[Job]:
    """Lease up to `limit` due jobs of `model` for `holder`, as ORM objects.

    The lease's transaction returns only the ids: the rows (an inbox item's payload is a few
    kilobytes of JSON to decode) are read after it has committed, so that building them does
    not keep SQLite's one write lock from the inbox's inserts (app.db.write_session). They are
    read on the same connection: a read that found no connection free would leave the jobs
    leased to nobody until the lease ran out.
    """
    now = utcnow()
    table: Any = model
    statement = (
        update(table)
        .where(col(table.id).in_(due_jobs(table, now=now, limit=limit).scalar_subquery()))
        .values(locked_until=now + lease, locked_by=holder)
        .returning(col(table.id))
        .execution_options(synchronize_session=False)
    )
    async with write_session(context.write_sessions) as session:
        ids = list((await session.scalars(statement)).all())
        await session.commit()
        if not ids:
            return []
        return list((await session.scalars(select(table).where(col(table.id).in_(ids)))).all())


async def count_ready(context: AppContext, model: type[Job]) -> int:
    from sqlalchemy import func

    table: Any = model
    async with context.sessions() as session:
        total = await session.scalar(
            select(func.count()).select_from(table).where(col(table.state) == JobState.QUEUED)
        )
    return int(total or 0)
