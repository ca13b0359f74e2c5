"""Writing delivery outcomes: many jobs per transaction (group commit), and only while a job's
lease still holds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, text, update

from app.context import AppContext
from app.db import write_session
from app.federation.delivery_claims import ClaimedDelivery
from app.federation.domain_health import DomainHealthBook
from app.models import DeliveryJob, JobState
from app.models.base import table_of, utcnow

log = logging.getLogger(__name__)
Item = TypeVar("Item")


class GroupCommit(Generic[Item]):
    """Items submitted while a write is running go together into the next write.

    Each submitter still waits until the write holding its item is committed (so a finished job
    is a recorded job), but a burst of thousands costs a handful of transactions, and however
    slow the database, there is never more than one write in flight.
    """

    def __init__(self, write: Callable[[list[Item]], Awaitable[None]]) -> None:
        self._write = write
        self._queue: list[tuple[Item, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._write([item for item, _ in batch])
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)


@dataclass(frozen=True, slots=True)
class _Outcome:
    job_id: int
    lease: datetime | None
    # Successes are written together, one UPDATE per claimed batch; the rest carry their values.
    done_status: int | None
    values: dict[str, Any] | None
    # A host whose failure today is not on record yet: written in the same transaction.
    failed_host: str | None = None


_JOBS = table_of(DeliveryJob)
# On the table, not the model: executed with many rows, a plain executemany (the ORM would make it
# a bulk update by primary key, which takes no further WHERE).
_WRITE_ONE = (
    update(_JOBS)
    .where(
        _JOBS.c.id == bindparam("job_id"),
        # Only while our lease holds: had it run out and another worker taken the job over, that
        # worker's result is the one that counts.
        _JOBS.c.locked_until == bindparam("lease"),
    )
    .values(
        state=bindparam("new_state"),
        attempts=bindparam("new_attempts"),
        next_attempt_at=bindparam("new_next_attempt_at"),
        locked_until=None,
        last_status=bindparam("new_last_status"),
        last_error=bindparam("new_last_error"),
        finished_at=bindparam("new_finished_at"),
    )
)


class OutcomeWriter:
    """Writes delivery outcomes by group commit; only while the job's lease still holds."""

    def __init__(self, context: AppContext, health: DomainHealthBook) -> None:
        self.context = context
        self.health = health
        self.lost_leases = 0
        self._commits: GroupCommit[_Outcome] = GroupCommit(self._write)

    async def done(self, job: ClaimedDelivery, status: int) -> None:
        await self._commits.submit(_Outcome(job.id, job.locked_until, status, None))

    async def write(
        self, job: ClaimedDelivery, values: dict[str, Any], *, failed_host: str | None = None
    ) -> None:
        await self._commits.submit(_Outcome(job.id, job.locked_until, None, values, failed_host))

    async def _write(self, batch: list[_Outcome]) -> None:
        now = utcnow()
        groups: dict[tuple[datetime | None, int], list[int]] = {}
        singles: list[dict[str, Any]] = []
        for item in batch:
            if item.values is None:
                assert item.done_status is not None
                groups.setdefault((item.lease, item.done_status), []).append(item.job_id)
            else:
                singles.append({"job_id": item.job_id, "lease": item.lease, **item.values})
        written, counted = 0, True
        table = _JOBS
        # On SQLite through the write connection (app.db.write_session): the transaction's
        # statements and its commit run without the worker's loop turning in between, so the
        # write lock is held for SQLite's own work only, not while a fan-out's other deliveries
        # run; the inbox's writes in the web processes wait for it that much less.
        async with write_session(self.context.write_sessions) as session:
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                # Visible to every worker at once, durable a moment later (PostgreSQL flushes its
                # log within 0.6 s): under a busy disk the commit no longer waits for the flush,
                # so an outcome is on record right after its answer and a worker killed now
                # repeats only what was answered in the last moments. Only a crash of PostgreSQL
                # itself could lose such a commit, and then the delivery is made once more, which
                # at-least-once delivery allows (inboxes ignore an activity id they already have).
                await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            for (lease, status), ids in groups.items():
                result = await session.execute(
                    update(table)
                    .where(table.c.id.in_(ids), table.c.locked_until == lease)
                    .values(
                        state=JobState.DONE,
                        attempts=table.c.attempts + 1,
                        locked_until=None,
                        last_status=status,
                        last_error=None,
                        finished_at=now,
                    )
                )
                written += getattr(result, "rowcount", 0)
            if singles:
                result = await session.execute(_WRITE_ONE, singles)
                rowcount = getattr(result, "rowcount", -1)
                # Not every driver counts the rows of an executemany (asyncpg does not).
                counted = rowcount >= 0
                written += max(rowcount, 0)
            failed_hosts = [item.failed_host for item in batch if item.failed_host]
            if failed_hosts:
                await self.health.write_failures(session, failed_hosts)
            await session.commit()
        if counted and written < len(batch):
            self.lost_leases += len(batch) - written
            log.warning("%d delivery outcomes not written: their leases had run out", len(batch) - written)
