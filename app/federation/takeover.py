"""Taking over the jobs of a worker that is gone, within seconds rather than when its leases run out.

Every lease names its holder (`locked_by`, the holder's heartbeat id, app.ops.heartbeat). A holder
is gone when
- its heartbeat has been silent for LEASE_HOLDER_SILENT (any worker, any machine, sees that), or
- it ran on this machine and its process is no longer alive, or has this process's pid under
  another id (a restarted container is pid 1 again): seen at once, so a process restarted after a
  crash resumes its predecessor's jobs immediately. On SQLite, where only one process can hold
  leases, every earlier holder is such a process.

Its queued jobs' leases are cleared (so the next claim takes them) and its heartbeat row removed.
A holder that was only slow, not dead, finds its row gone at its next beat and stops its jobs
(HeartbeatLost), and the outcomes it would still write are refused by their lease condition: a
job never has two live holders for longer than one beat.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlmodel import col

from app.context import AppContext
from app.models import JobState, WorkerHeartbeat
from app.models.base import utcnow

log = logging.getLogger(__name__)

# Three missed beats (app.ops.heartbeat beats every 2 s): with a sweep every TAKEOVER_INTERVAL and
# the queues' 1 s poll, a dead holder's jobs run again within about 9 s of its death.
LEASE_HOLDER_SILENT = timedelta(seconds=6)
TAKEOVER_INTERVAL = 2.0


@dataclass(frozen=True)
class Holder:
    worker_id: str
    hostname: str
    pid: int
    beat_at: datetime


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, alive
    return True


def gone_holders(holders: Iterable[Holder], me: str, now: datetime) -> list[str]:
    """The ids of the holders among `holders` that are gone (see the module's docstring)."""
    hostname, pid = socket.gethostname()[:255], os.getpid()
    gone = []
    for holder in holders:
        if holder.worker_id == me:
            continue
        silent = now - holder.beat_at > LEASE_HOLDER_SILENT
        here = holder.hostname == hostname
        dead_here = here and (holder.pid == pid or not _process_alive(holder.pid))
        if silent or dead_here:
            gone.append(holder.worker_id)
    return gone


async def release_leases(context: AppContext, models: Sequence[type[Any]], holders: Sequence[str]) -> int:
    """Clear the leases `holders` hold on queued jobs of `models`; how many were cleared."""
    if not holders:
        return 0
    released = 0
    async with context.sessions() as session:
        for model in models:
            table: Any = model
            result = await session.execute(
                update(table)
                .where(col(table.locked_by).in_(list(holders)), col(table.state) == JobState.QUEUED)
                .values(locked_until=None, locked_by=None)
                .execution_options(synchronize_session=False)
            )
            released += max(getattr(result, "rowcount", 0), 0)
        await session.commit()
    return released


async def take_over_gone_holders(context: AppContext, models: Sequence[type[Any]], me: str) -> int:
    """Release the jobs of every gone holder and forget its heartbeat; how many jobs were released."""
    async with context.sessions() as session:
        rows = await session.execute(
            select(
                col(WorkerHeartbeat.worker_id),
                col(WorkerHeartbeat.hostname),
                col(WorkerHeartbeat.pid),
                col(WorkerHeartbeat.beat_at),
            )
        )
        holders = [Holder(*row) for row in rows.all()]
    gone = gone_holders(holders, me, utcnow())
    if not gone:
        return 0
    released = await release_leases(context, models, gone)
    async with context.sessions() as session:
        await session.execute(delete(WorkerHeartbeat).where(col(WorkerHeartbeat.worker_id).in_(gone)))
        await session.commit()
    if released:
        log.warning("took over %d jobs of workers that are gone: %s", released, ", ".join(gone))
    return released
