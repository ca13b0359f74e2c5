"""Worker heartbeats: each running worker keeps one row fresh, so a stalled worker is visible.

The row's id is also the name a worker's leases carry (`locked_by`): app.federation.takeover
hands a silent or dead worker's jobs to the living as soon as its beats stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlmodel import col

from app.context import AppContext
from app.models import WorkerHeartbeat
from app.models.base import utcnow

log = logging.getLogger(__name__)

# Often, because a dead worker's jobs are taken over once its beats stop (within seconds, see
# app.federation.takeover); one small UPDATE every two seconds per worker.
HEARTBEAT_INTERVAL = 2.0
# For readiness: a worker busy with a long batch still beats (the beat is a task of its own), so
# silence this long means a dead or wedged process, not a slow one.
HEARTBEAT_STALE = timedelta(seconds=30)
# Rows of workers killed without a clean stop are removed after this long.
HEARTBEAT_FORGET = timedelta(days=1)


class HeartbeatLost(Exception):
    """This worker's row is gone: another worker found it silent and took its jobs over."""


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"[:255]


async def register_worker(context: AppContext, worker_id: str) -> None:
    """This worker's row, written before it claims any job (so its leases never look orphaned)."""
    started = utcnow()
    async with context.heartbeat_sessions() as session:
        session.add(
            WorkerHeartbeat(
                worker_id=worker_id,
                hostname=socket.gethostname()[:255],
                pid=os.getpid(),
                started_at=started,
                beat_at=started,
            )
        )
        await session.execute(
            delete(WorkerHeartbeat).where(col(WorkerHeartbeat.beat_at) < started - HEARTBEAT_FORGET)
        )
        await session.commit()


async def unregister_worker(context: AppContext, worker_id: str) -> None:
    with contextlib.suppress(Exception):
        async with context.heartbeat_sessions() as session:
            await session.execute(delete(WorkerHeartbeat).where(col(WorkerHeartbeat.worker_id) == worker_id))
            await session.commit()


async def beat(context: AppContext, worker_id: str, interval: float = HEARTBEAT_INTERVAL) -> None:
    """Refresh `worker_id`'s row every `interval` seconds until cancelled; HeartbeatLost when the
    row has been removed by a worker that took this one's jobs over."""
    while True:
        await asyncio.sleep(interval)
        try:
            # On a connection of its own (AppContext.heartbeat_engine): when the worker's jobs or
            # the web requests hold every connection of the pool, the beat still goes out.
            async with context.heartbeat_sessions() as session:
                result = await session.execute(
                    update(WorkerHeartbeat)
                    .where(col(WorkerHeartbeat.worker_id) == worker_id)
                    .values(beat_at=utcnow())
                )
                await session.commit()
            context.metrics.observe_pool(context.engine)
        except Exception:
            # The database may be away for a moment; readiness reports it, the worker goes on.
            log.warning("writing the worker heartbeat failed", exc_info=True)
            continue
        if getattr(result, "rowcount", 1) == 0:
            raise HeartbeatLost(worker_id)


async def beat_while_running(
    context: AppContext, interval: float = HEARTBEAT_INTERVAL, worker_id: str | None = None
) -> None:
    """Write this worker's heartbeat every `interval` seconds until cancelled, then remove it."""
    worker_id = worker_id or new_worker_id()
    await register_worker(context, worker_id)
    try:
        await beat(context, worker_id, interval)
    finally:
        await unregister_worker(context, worker_id)


async def worker_beats(context: AppContext) -> list[tuple[str, datetime]]:
    """(worker id, last beat) of every worker that has a row, newest first."""
    async with context.sessions() as session:
        rows = await session.execute(
            select(col(WorkerHeartbeat.worker_id), col(WorkerHeartbeat.beat_at)).order_by(
                col(WorkerHeartbeat.beat_at).desc()
            )
        )
        return [(worker_id, beat_at) for worker_id, beat_at in rows.all()]
