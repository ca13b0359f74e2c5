"""Queueing background work: a job of a kind (its handler lives in app.federation.jobs) with a JSON
payload, written in the caller's transaction so that it exists exactly when what asked for it was
committed; this process's worker is woken once it is."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.context import AppContext
from app.models import BackgroundJob, JobState
from app.models.base import utcnow
from app.queue_names import JOBS_QUEUE, WAKE_JOBS_INFO_KEY
from app.services.after_commit import after_commit

# The kinds handled today; each has a handler registered in app.federation.jobs.
ACCOUNT_REFRESH = "account.refresh"
# An upload too large to convert during its request (app.services.media).
MEDIA_PROCESS = "media.process"
# A remote post's attachments, or a remote account's pictures, copied here (app.services.remote_media).
REMOTE_MEDIA_CACHE = "media.cache_remote"
# The daily cleanup of cached remote media; each run queues the next.
MEDIA_CLEANUP = "media.cleanup"
# Every cached copy of a domain's media dropped: a domain block came to reject its media or suspend it.
MEDIA_CLEAR_DOMAIN = "media.clear_domain"
# An announcement published to start later comes into force: the apps' streams hear of it then.
ANNOUNCEMENT_START = "announcement.start"


def queue_job(
    context: AppContext,
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    run_at: datetime | None = None,
) -> BackgroundJob:
    """Add a job to the caller's transaction; it runs after the commit (or at `run_at`)."""
    job = BackgroundJob(kind=kind, payload=payload, next_attempt_at=run_at or utcnow())
    session.add(job)
    after_commit(session, ("wake", JOBS_QUEUE), lambda: context.work.notify(JOBS_QUEUE))
    return job


def queue_job_in(session: AsyncSession, kind: str, payload: dict[str, Any]) -> BackgroundJob:
    """queue_job for code that holds only a session: the session's factory knows whom to wake."""
    job = BackgroundJob(kind=kind, payload=payload, next_attempt_at=utcnow())
    session.add(job)
    wake = session.sync_session.info.get(WAKE_JOBS_INFO_KEY)
    if wake is not None:
        after_commit(session, ("wake", JOBS_QUEUE), wake)
    return job


async def ensure_queued(context: AppContext, kind: str, *, after: timedelta) -> None:
    """Queue a job of `kind` to run `after` from now, unless one is queued already (for recurring
    jobs that reschedule themselves, such as the daily media cleanup)."""
    async with context.sessions() as session:
        waiting = await session.scalar(
            select(func.count())
            .select_from(BackgroundJob)
            .where(col(BackgroundJob.kind) == kind, col(BackgroundJob.state) == JobState.QUEUED)
        )
        if waiting:
            return
        queue_job(context, session, kind, {}, run_at=utcnow() + after)
        await session.commit()
