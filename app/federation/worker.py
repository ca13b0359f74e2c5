"""The background worker: runs queued inbox items and deliveries, in the web process or alone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import col

from app.config import sqlite_database_path
from app.context import AppContext
from app.federation.queue import QueueSpec, claim_jobs
from app.federation.takeover import TAKEOVER_INTERVAL, release_leases, take_over_gone_holders
from app.models import JobState
from app.models.base import utcnow
from app.ops.wal_keeper import keep_wal_short

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
# A handler that fails unexpectedly is retried this often before the job is given up.
MAX_UNEXPECTED_FAILURES = 8
# A job that found no free database connection comes back after this many seconds.
SATURATED_WAIT = 2.0


class Worker:
    def __init__(self, context: AppContext, queues: list[QueueSpec[Any]]) -> None:
        self.context = context
        self.queues = queues
        # The name this worker's leases carry while `run` runs (its heartbeat id).
        self.holder: str | None = None

    async def run(self) -> None:
        """Run every queue until cancelled, beating a heartbeat and taking over gone workers' jobs."""
        from app.ops.heartbeat import HeartbeatLost, beat, new_worker_id, register_worker, unregister_worker

        models = [queue.model for queue in self.queues]
        while True:
            holder = self.holder = new_worker_id()
            # Registered before the first claim, so that no one takes this worker for gone.
            await register_worker(self.context, holder)
            try:
                # At once: a predecessor killed before this start leaves its jobs to us now.
                await self._take_over(models, holder)
                async with asyncio.TaskGroup() as group:
                    group.create_task(beat(self.context, holder), name="worker:heartbeat")
                    group.create_task(self._keep_taking_over(models, holder), name="worker:takeover")
                    database = sqlite_database_path(self.context.settings)
                    if database is not None:
                        # One process per database does it: the one running the worker.
                        group.create_task(keep_wal_short(database), name="worker:wal")
                    for queue in self.queues:
                        group.create_task(self._run_queue(queue), name=f"worker:{queue.name}")
            except* HeartbeatLost:
                # Taken for gone (the database or this process stalled): the jobs in hand were
                # stopped with the queues above; start again under a new name.
                log.error("this worker was taken for gone and its jobs handed on; starting again")
            finally:
                # Whatever is still leased to this worker is free at once for the next one.
                with contextlib.suppress(Exception):
                    await release_leases(self.context, models, [holder])
                await unregister_worker(self.context, holder)

    async def _take_over(self, models: list[type[Any]], holder: str) -> None:
        try:
            if await take_over_gone_holders(self.context, models, holder):
                for queue in self.queues:
                    self.context.work.notify(queue.name)
        except Exception:
            log.exception("taking over the jobs of gone workers failed; trying again shortly")

    async def _keep_taking_over(self, models: list[type[Any]], holder: str) -> None:
        while True:
            await asyncio.sleep(TAKEOVER_INTERVAL)
            await self._take_over(models, holder)

    async def run_until_idle(self) -> None:
        """Process every job that is due, then return (tests and one-shot CLI runs; bound it with asyncio.timeout)."""
        while True:
            ran = 0
            for queue in self.queues:
                jobs = await self._claim(queue, queue.batch_size)
                ran += len(jobs)
                await self._prepare(queue, jobs)
                await asyncio.gather(*(self._run_one(queue, job) for job in jobs))
            if ran == 0:
                return

    async def _run_queue(self, queue: QueueSpec[Any]) -> None:
        running: set[asyncio.Task[None]] = set()
        preparing: set[asyncio.Task[None]] = set()
        # Jobs claimed and not finished yet, whether being prepared or running: the slots in use.
        held = 0
        # Slots are refilled a batch at a time: claiming one job each time one finishes would cost
        # a claim transaction per job, more than many jobs cost themselves.
        refill = max(1, min(queue.batch_size, queue.concurrency) // 4)
        room = asyncio.Event()
        if queue.start is not None:
            try:
                await queue.start()
            except Exception:
                log.exception(
                    "preparing the %s queue failed; its jobs will try again as they run", queue.name
                )

        def release(count: int) -> None:
            nonlocal held
            held -= count
            if queue.concurrency - held >= refill:
                room.set()

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            release(1)

        def start(jobs: list[Any]) -> None:
            for job in jobs:
                task = asyncio.create_task(self._run_one(queue, job))
                running.add(task)
                task.add_done_callback(finished)

        async def prepare_then_start(jobs: list[Any]) -> None:
            try:
                await self._prepare(queue, jobs)
            except BaseException:
                # Cancelled (shutdown): the jobs do not start, and their leases run out.
                release(len(jobs))
                raise
            start(jobs)

        try:
            while True:
                free = queue.concurrency - held
                if free < refill:
                    room.clear()
                    await room.wait()
                    continue
                try:
                    jobs = await self._claim(queue, min(free, queue.batch_size))
                except Exception:
                    log.exception("claiming %s jobs failed; retrying shortly", queue.name)
                    await asyncio.sleep(POLL_INTERVAL)
                    continue
                held += len(jobs)
                if jobs and queue.prepare is not None:
                    # In a task of its own, so that the next batch is claimed meanwhile.
                    preparation = asyncio.create_task(prepare_then_start(jobs))
                    preparing.add(preparation)
                    preparation.add_done_callback(preparing.discard)
                else:
                    start(jobs)
                if jobs and len(jobs) == min(free, queue.batch_size):
                    continue
                await self.context.work.wait(queue.name, POLL_INTERVAL)
        finally:
            # Stopped (shutdown): the jobs in hand stop too, before the database and HTTP client
            # they use are closed. Their leases run out and another run takes them up again.
            for task in (*preparing, *running):
                task.cancel()
            await asyncio.gather(*preparing, return_exceptions=True)
            await asyncio.gather(*running, return_exceptions=True)

    async def _prepare(self, queue: QueueSpec[Any], jobs: list[Any]) -> None:
        if queue.prepare is None or not jobs:
            return
        try:
            await queue.prepare(jobs)
        except Exception:
            # Each job still runs: its handler prepares what was left unprepared, and a job that
            # fails again is recorded as a failure of its own.
            log.exception("preparing a batch of %d %s jobs failed", len(jobs), queue.name)

    async def _claim(self, queue: QueueSpec[Any], limit: int) -> list[Any]:
        if queue.claim is not None:
            return await queue.claim(self.context, limit, queue.lease, self.holder)
        return await claim_jobs(self.context, queue.model, limit=limit, lease=queue.lease, holder=self.holder)

    async def _run_one(self, queue: QueueSpec[Any], job: Any) -> None:
        try:
            await queue.handler(job)
        except asyncio.CancelledError:
            raise
        except PoolTimeout:
            # The database is saturated (the web side of the process shares the pool): nothing is
            # wrong with the job, so it comes back shortly without an attempt counted against it.
            log.warning("no database connection for %s job %s; postponed", queue.name, job.id)
            await self._postpone(queue, job)
        except Exception as error:
            log.exception("%s job %s failed", queue.name, job.id)
            await self._record_unexpected_failure(queue, job, error)

    async def _postpone(self, queue: QueueSpec[Any], job: Any) -> None:
        table: Any = queue.model
        values = {"locked_until": None, "next_attempt_at": utcnow() + timedelta(seconds=SATURATED_WAIT)}
        try:
            async with self.context.sessions() as session:
                await session.execute(update(table).where(col(table.id) == job.id).values(**values))
                await session.commit()
        except Exception:
            # Still saturated: the job's lease runs out, or its holder's takeover frees it.
            log.warning("could not postpone %s job %s", queue.name, job.id)

    async def _record_unexpected_failure(self, queue: QueueSpec[Any], job: Any, error: Exception) -> None:
        attempts = job.attempts + 1
        table: Any = queue.model
        values: dict[str, Any] = {
            "attempts": attempts,
            "locked_until": None,
            "last_error": f"{type(error).__name__}: {error}"[:2000],
        }
        if attempts >= MAX_UNEXPECTED_FAILURES:
            values["state"] = JobState.FAILED
        else:
            backoff = 2**attempts + random.uniform(0, 2**attempts)
            values["next_attempt_at"] = utcnow() + timedelta(seconds=backoff)
        async with self.context.sessions() as session:
            await session.execute(update(table).where(col(table.id) == job.id).values(**values))
            await session.commit()


def build_worker(context: AppContext) -> Worker:
    from app.federation.delivery import delivery_queue
    from app.federation.inbox_processing import inbox_queue
    from app.federation.jobs import jobs_queue

    return Worker(context, [inbox_queue(context), delivery_queue(context), jobs_queue(context)])
