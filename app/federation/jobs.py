"""The worker's general queue: background jobs of any kind (app.models.BackgroundJob), each run by
the handler registered for its kind, on the same machinery as deliveries and inbox items (leased
claims, SKIP LOCKED on PostgreSQL, retries with backoff, survival across restarts).

A handler takes the context and the job's payload. It finishes by returning; `RetryLater` asks for
another attempt after a backoff (the normal way to say "the other side is down"); `JobFailed`
records a failure that trying again cannot mend. Anything else it raises is a bug: the worker
logs it and retries too, a few times. Adding a kind (media processing, poll expiry, imports,
scheduled posts) is a handler and a line in `HANDLERS`, and its name in app.services.jobs.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from app.activitypub.resolver import ActorResolver, ResolveError, ResolveUnavailable
from app.context import AppContext
from app.federation.queue import QueueSpec
from app.federation.web_push import PushRefused, PushRetry, send_web_push
from app.models import BackgroundJob, JobState
from app.models.base import utcnow
from app.queue_names import JOBS_QUEUE
from app.services.announcements import Announcements
from app.services.jobs import (
    ACCOUNT_REFRESH,
    ANNOUNCEMENT_START,
    MEDIA_CLEANUP,
    MEDIA_CLEAR_DOMAIN,
    MEDIA_PROCESS,
    REMOTE_MEDIA_CACHE,
)
from app.services.media import MediaService
from app.services.remote_media import CacheLater, RemoteMediaCache, clear_domain, run_cleanup
from app.services.viewer import Viewer
from app.services.web_push import PUSH_SEND

log = logging.getLogger(__name__)

JOBS_CONCURRENCY = 8
JOBS_LEASE = timedelta(minutes=5)
# Attempts before a job that keeps asking to be retried is given up: with the backoff below
# that is about two days, as for deliveries.
MAX_ATTEMPTS = 12
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=12)


class RetryLater(Exception):
    """Try this job again after a backoff; the message is kept as its last error."""


class JobFailed(Exception):
    """This job cannot succeed; recorded with the message, never retried."""


JobHandler = Callable[[AppContext, dict[str, Any]], Awaitable[None]]


async def refresh_account(context: AppContext, payload: dict[str, Any]) -> None:
    """Fetch a remote actor's document again and store what it says now (name, avatar, key...)."""
    uri = payload.get("uri")
    if not isinstance(uri, str) or not uri:
        raise JobFailed("the payload names no actor uri")
    try:
        await ActorResolver(context).fetch_actor(uri, refresh=True, cached_when_unavailable=False)
    except ResolveUnavailable as error:
        raise RetryLater(str(error)) from None
    except ResolveError as error:
        raise JobFailed(str(error)) from None


async def process_media(context: AppContext, payload: dict[str, Any]) -> None:
    """Convert an upload that was too large (or a video) to convert during its request."""
    media_id = payload.get("media_id")
    if not isinstance(media_id, int):
        raise JobFailed("the payload names no attachment")
    await MediaService(context).process_queued(media_id, str(payload.get("what") or "image"))


async def cache_remote_media(context: AppContext, payload: dict[str, Any]) -> None:
    """Copy a remote post's attachments here; retried while its server is unreachable."""
    post_id = payload.get("post_id")
    if not isinstance(post_id, int):
        raise JobFailed("the payload names no post")
    try:
        await RemoteMediaCache(context).cache_post(post_id)
    except CacheLater as error:
        raise RetryLater(str(error)) from None


async def clean_media_cache(context: AppContext, payload: dict[str, Any]) -> None:
    """The daily cleanup of cached remote media (it queues the next run itself)."""
    await run_cleanup(context)


async def clear_domain_media(context: AppContext, payload: dict[str, Any]) -> None:
    """Drop every cached copy of a domain's media (a domain block rejects them, or suspends it)."""
    domain = payload.get("domain")
    if not isinstance(domain, str) or not domain:
        raise JobFailed("the payload names no domain")
    await clear_domain(context, domain)


async def start_announcement(context: AppContext, payload: dict[str, Any]) -> None:
    """An announcement published to start later comes into force: its streams hear of it now."""
    announcement_id = payload.get("announcement_id")
    if not isinstance(announcement_id, int):
        raise JobFailed("the payload names no announcement")
    await Announcements(context, Viewer.system()).announce_start(announcement_id)


async def send_push(context: AppContext, payload: dict[str, Any]) -> None:
    """One Web Push message to one subscription (app.federation.web_push)."""
    try:
        await send_web_push(context, payload)
    except PushRetry as error:
        raise RetryLater(str(error)) from None
    except PushRefused as error:
        raise JobFailed(str(error)) from None


HANDLERS: Mapping[str, JobHandler] = MappingProxyType(
    {
        ACCOUNT_REFRESH: refresh_account,
        PUSH_SEND: send_push,
        MEDIA_PROCESS: process_media,
        REMOTE_MEDIA_CACHE: cache_remote_media,
        MEDIA_CLEANUP: clean_media_cache,
        MEDIA_CLEAR_DOMAIN: clear_domain_media,
        ANNOUNCEMENT_START: start_announcement,
    }
)


def retry_delay(attempts: int) -> timedelta:
    """Exponential, with jitter so that jobs failing together do not come back together."""
    base = min(FIRST_RETRY * 2 ** max(0, attempts - 1), LONGEST_RETRY)
    return base * random.uniform(1.0, 1.5)


def jobs_queue(
    context: AppContext, handlers: Mapping[str, JobHandler] = HANDLERS
) -> QueueSpec[BackgroundJob]:
    """The worker's queue of background jobs; `handlers` maps each kind to its handler."""

    async def run(job: BackgroundJob) -> None:
        handler = handlers.get(job.kind)
        if handler is None:
            await _finish(context, job, JobState.FAILED, f"no handler for jobs of kind {job.kind!r}")
            return
        try:
            await handler(context, dict(job.payload))
        except RetryLater as error:
            await _retry(context, job, str(error))
        except JobFailed as error:
            log.info("%s job %s failed: %s", job.kind, job.id, error)
            await _finish(context, job, JobState.FAILED, str(error))
        else:
            await _finish(context, job, JobState.DONE, None)

    return QueueSpec(
        name=JOBS_QUEUE,
        model=BackgroundJob,
        handler=run,
        concurrency=JOBS_CONCURRENCY,
        batch_size=JOBS_CONCURRENCY,
        lease=JOBS_LEASE,
    )


async def _retry(context: AppContext, job: BackgroundJob, error: str) -> None:
    attempts = job.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        await _finish(context, job, JobState.FAILED, error, attempts=attempts)
        return
    await _write(
        context,
        job,
        attempts=attempts,
        last_error=error[:2000],
        locked_until=None,
        next_attempt_at=utcnow() + retry_delay(attempts),
    )


async def _finish(
    context: AppContext,
    job: BackgroundJob,
    state: JobState,
    error: str | None,
    *,
    attempts: int | None = None,
) -> None:
    await _write(
        context,
        job,
        state=state,
        attempts=job.attempts + 1 if attempts is None else attempts,
        last_error=None if error is None else error[:2000],
        locked_until=None,
        finished_at=utcnow(),
    )


async def _write(context: AppContext, job: BackgroundJob, **values: Any) -> None:
    async with context.sessions() as session:
        await session.execute(update(BackgroundJob).where(col(BackgroundJob.id) == job.id).values(**values))
        await session.commit()
