"""Delivery of our activities to remote inboxes: one signed POST per job, and what each answer means.

The worker hands every claimed delivery job (`ClaimedDelivery`) to a `Deliverer`. What happens to a job:

- 2xx: done.
- 4xx other than 401, 408 and 429: failed for good (recorded, never retried). 410 also marks the
  account behind a personal inbox gone, so it is no longer delivered to.
- 429 and 503 honour Retry-After; every other failure (network errors, timeouts, 5xx, 401, 408)
  is retried with exponential backoff and jitter: 16 attempts over about 2 to 2.6 days, as
  Mastodon's Sidekiq schedule does (15 s + n⁴ after the n-th failure).
- Redirects are not followed: the signature covers the request target, so a redirected POST could
  only be refused; an inbox that redirects has failed for good.

Two guards keep one bad host from costing the others anything:

- a per-host circuit breaker: after 10 consecutive failures the host's jobs are postponed, without
  a request, for 60 s; then one job probes it, and the others wait for the probe's answer;
- domain availability (`DomainHealth`): a host with failures on 7 distinct (UTC) days, with no
  success in between, is unavailable. Its deliveries are dropped without a request (Mastodon does
  the same), except one probe per day: the first job for the host on a day on which it has not
  failed yet is attempted. It is available again, its failure days cleared, after one success:
  that probe, an admin's "retry" on the delivery status page, or `mark_host_reachable` (for the
  inbox to call when the host writes to us).

The breaker, the per-host limits and the caches are per-process state held by the `Deliverer`
instance (one per worker), never at module level: workers in other processes keep their own, and
the database is what they share.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, Generic, TypeVar

import httpx
from sqlalchemy import ColumnElement, bindparam, case, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.activitypub.addresses import ForbiddenAddressError
from app.activitypub.delivery_connections import Target, parse_target
from app.activitypub.signatures import UnsignedRequest, body_digest, http_date, prepare_signature_at
from app.activitypub.signing_process import SigningError, SigningKeyError
from app.activitypub.transport import poster_for
from app.context import AppContext
from app.db import dialect_insert
from app.federation.queue import QueueSpec, due_jobs
from app.models import Account, DeliveryJob, DomainHealth, JobState, OutboxActivity
from app.models.base import new_ids, table_of, utcnow
from app.queue_names import DELIVERY_QUEUE
from app.services.read_cache import ReadCache

log = logging.getLogger(__name__)
Item = TypeVar("Item")

ACTIVITY_JSON = "application/activity+json"
MAX_ATTEMPTS = 16
# Sidekiq's schedule stretched by up to this much, so jobs that failed together do not retry together.
RETRY_JITTER = 0.25
RETRY_AFTER_MIN = timedelta(seconds=1)
RETRY_AFTER_MAX = timedelta(days=1)
# Only the status matters; the body is read (to keep the connection reusable) up to this much.
MAX_RESPONSE_BYTES = 1_048_576

BREAKER_THRESHOLD = 10
BREAKER_COOLOFF = 60.0
# While a probe is out to a host whose breaker just closed, its other jobs wait this long.
PROBE_WAIT = 5.0
PER_HOST_REQUESTS = 4
# Jobs allowed to queue for one host's requests before further ones are postponed, so that a slow
# host with a backlog cannot take all of the worker's slots.
PER_HOST_WAITING = 16
LINE_WAIT = 2.0
# A job whose signature could not be made (the signing process failing) comes back after this.
SIGNING_WAIT = 30.0
UNAVAILABLE_AFTER_DAYS = 7
HEALTH_REFRESH = 30.0
ACTIVITY_CACHE_SIZE = 256
# Activities never change once queued; the author's key might (a rotation), so not for ever.
ACTIVITY_CACHE_TTL = 300.0
TARGET_CACHE_SIZE = 16_384
# Deliveries in flight per worker. Waiting on the network costs next to nothing, and a fan-out meets
# hosts that hang until the 10 s read timeout: with too few slots those would hold every slot and
# stall the healthy ones. Below the transport's 1024 pooled connections, so fetches find one too.
DELIVERY_CONCURRENCY = 768
OPEN_FILES_WANTED = 65_536
# Jobs per claim at most: each claim is a transaction with a fixed cost, and a fan-out's jobs are
# all due at once (a claim starts every job it takes, so this adds nothing to what is in flight).
DELIVERY_BATCH = 512
# A job is claimed for this long; it finishes well within it (its batch's preparation, then 5 s
# connect + 10 s read timeouts, and the per-host line is kept short), and a crashed worker's jobs
# are retaken once it runs out.
DELIVERY_LEASE = timedelta(minutes=2)


def retry_delay(failures: int) -> timedelta:
    """How long to wait after the `failures`-th failed attempt (1 → ~16 s … 15 → ~14 h)."""
    base = 15 + failures**4
    return timedelta(seconds=base * (1 + random.uniform(0, RETRY_JITTER)))


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as seconds or as an HTTP date, held within sane bounds; None if absent or unusable."""
    if not value:
        return None
    value = value.strip()
    delay: timedelta | None = None
    if value.isdigit():
        delay = timedelta(seconds=int(value))
    else:
        try:
            delay = parsedate_to_datetime(value) - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(RETRY_AFTER_MIN, min(RETRY_AFTER_MAX, delay))


class Verdict(Enum):
    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"
    # Not attempted now (breaker open, host busy): back in the queue without counting an attempt.
    POSTPONE = "postpone"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    status: int | None = None
    error: str | None = None
    retry_after: timedelta | None = None
    # The host did not answer usefully (network error, timeout, 5xx...): feeds the breaker and
    # the domain's failure days. A host that answers, even with a refusal, is up.
    host_failed: bool = False
    # 410 Gone from the inbox.
    gone: bool = False
    # How long to postpone a POSTPONE.
    delay: float = 0.0
    # An attempt counted against the job's 16 (no request may have gone out: a key that cannot sign).
    attempted: bool = True

    @property
    def contacted(self) -> bool:
        """The host was asked (it answered, or failed to): only then do its breaker and its
        failure days learn from the outcome. Our own failures (signing, the address guard) are not
        the host's."""
        return self.status is not None or self.host_failed


def classify(status: int, retry_after: str | None, now: datetime) -> Outcome:
    """What an HTTP status from an inbox means for the job."""
    if 200 <= status < 300:
        return Outcome(Verdict.DONE, status)
    if 300 <= status < 400:
        return Outcome(Verdict.FAILED, status, f"the inbox redirected ({status})")
    if status in (429, 503):
        return Outcome(
            Verdict.RETRY,
            status,
            f"the inbox answered {status}",
            retry_after=parse_retry_after(retry_after, now),
            host_failed=True,
        )
    if status in (401, 408) or status >= 500:
        return Outcome(Verdict.RETRY, status, f"the inbox answered {status}", host_failed=True)
    if status == 410:
        return Outcome(Verdict.FAILED, status, "the inbox is gone (410)", gone=True)
    return Outcome(Verdict.FAILED, status, f"the inbox refused the activity ({status})")


# --------------------------------------------------------------------------------------------
# Per-host limits and the circuit breaker


@dataclass
class _HostState:
    semaphore: asyncio.Semaphore
    # Tasks holding or waiting for the semaphore.
    users: int = 0
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


class HostGates:
    """Per-host concurrency and circuit breakers. Only hosts in use or failing are remembered."""

    def __init__(
        self,
        *,
        per_host: int = PER_HOST_REQUESTS,
        max_waiting: int = PER_HOST_WAITING,
        threshold: int = BREAKER_THRESHOLD,
        cooloff: float = BREAKER_COOLOFF,
    ) -> None:
        self.per_host = per_host
        self.max_waiting = max_waiting
        self.threshold = threshold
        self.cooloff = cooloff
        self._hosts: dict[str, _HostState] = {}

    def open_for(self, host: str) -> float | None:
        """Seconds until `host`'s open circuit closes; None when it is closed."""
        state = self._hosts.get(host)
        if state is None:
            return None
        remaining = state.open_until - time.monotonic()
        return remaining if remaining > 0 else None

    def admit(self, host: str) -> float | None:
        """None when a request to `host` may go ahead, else how long to postpone the job.

        Must be followed by `enter(host)` without an await in between (the check and the claim are
        one step on the event loop), and `leave(host)` after. A caller admitted as the breaker's
        probe must report back through `succeeded`, `failed` or (when the host was never asked)
        `released`.
        """
        state = self._hosts.get(host)
        if state is None:
            return None
        now = time.monotonic()
        if state.open_until > now:
            return state.open_until - now
        if state.failures >= self.threshold:
            if state.probing:
                return PROBE_WAIT
            state.probing = True
            return None
        if state.users >= self.per_host + self.max_waiting:
            return LINE_WAIT
        return None

    async def enter(self, host: str) -> None:
        """Take one of `host`'s request slots, waiting for one if need be; `leave` gives it back."""
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _HostState(asyncio.Semaphore(self.per_host))
        state.users += 1
        try:
            await state.semaphore.acquire()
        except BaseException:
            state.users -= 1
            self._forget_if_idle(host, state)
            raise

    def leave(self, host: str) -> None:
        state = self._hosts[host]
        state.semaphore.release()
        state.users -= 1
        self._forget_if_idle(host, state)

    def released(self, host: str) -> None:
        """The slot was used without asking the host (our side failed): nothing learnt about it,
        but a probe it was admitted as is over."""
        state = self._hosts.get(host)
        if state is not None:
            state.probing = False
            self._forget_if_idle(host, state)

    def succeeded(self, host: str) -> None:
        state = self._hosts.get(host)
        if state is not None:
            state.failures = 0
            state.open_until = 0.0
            state.probing = False
            self._forget_if_idle(host, state)

    def failed(self, host: str) -> None:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _HostState(asyncio.Semaphore(self.per_host))
        state.failures += 1
        state.probing = False
        if state.failures >= self.threshold:
            state.open_until = time.monotonic() + self.cooloff

    def _forget_if_idle(self, host: str, state: _HostState) -> None:
        if state.users == 0 and state.failures == 0 and self._hosts.get(host) is state:
            del self._hosts[host]


# --------------------------------------------------------------------------------------------
# Group commit


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


# --------------------------------------------------------------------------------------------
# Domain availability


@dataclass
class _Health:
    failure_days: int
    last_failure_day: date | None
    unavailable: bool


class DomainHealthBook:
    """What this worker knows of `DomainHealth`: the hosts with failure days, reloaded every 30 s.

    Healthy hosts have no row, so a fan-out to thousands of them costs no query at all; a failing
    host costs one write per day, not one per failed job.
    """

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self._troubled: dict[str, _Health] = {}
        self._loaded_at = float("-inf")
        self._loading: asyncio.Lock = asyncio.Lock()
        # Unavailable hosts this worker lets a job through to as today's probe: (day, job id).
        self._probes: dict[str, tuple[date, int]] = {}

    async def refresh(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < HEALTH_REFRESH:
            return
        async with self._loading:
            if not force and time.monotonic() - self._loaded_at < HEALTH_REFRESH:
                return
            self._troubled = await self._read(col(DomainHealth.failure_days) > 0)
            self._loaded_at = time.monotonic()

    async def _read(self, condition: ColumnElement[bool]) -> dict[str, _Health]:
        """The health of the hosts whose rows meet `condition`."""
        async with self.context.sessions() as session:
            rows = await session.execute(
                select(
                    col(DomainHealth.host),
                    col(DomainHealth.failure_days),
                    col(DomainHealth.last_failure_day),
                    col(DomainHealth.unavailable_since),
                ).where(condition)
            )
            return {
                host: _Health(days, last_day, unavailable is not None)
                for host, days, last_day, unavailable in rows.all()
            }

    async def skip_reasons(self, jobs: list[tuple[int, str]]) -> dict[int, str]:
        """Why each of `jobs` (id, host) is dropped without a request, by job id; a job not named
        is attempted. Healthy hosts cost nothing; a batch's unavailable hosts cost one query.

        Today's probe of an unavailable domain belongs to the job it was given to: should that job
        come back (its batch's preparation failed, it was postponed), it is let through again, and
        no other job of that host is until tomorrow.
        """
        suspects = {host for _, host in jobs if (known := self._troubled.get(host)) and known.unavailable}
        if not suspects:
            return {}
        # Before dropping anything, the hosts' rows themselves: an admin may have made one
        # available again, or another worker's probe succeeded, since this worker last looked.
        found = await self._read(col(DomainHealth.host).in_(suspects))
        for host in suspects:
            if host in found:
                self._troubled[host] = found[host]
            else:
                self._troubled.pop(host, None)
        today = utcnow().date()
        reasons: dict[int, str] = {}
        for job_id, host in jobs:
            health = found.get(host)
            if health is None or not health.unavailable:
                continue
            if health.last_failure_day != today:
                probe = self._probes.get(host)
                if probe is None or probe[0] != today or probe[1] == job_id:
                    self._probes[host] = (today, job_id)
                    continue
            reasons[job_id] = (
                f"{host} is unavailable: deliveries failed on {health.failure_days} days; probed once a day"
            )
        return reasons

    def to_record(self, host: str) -> bool:
        """Whether a failure of `host` still has to be written: once per host and day is enough."""
        known = self._troubled.get(host)
        return known is None or known.last_failure_day != utcnow().date()

    async def write_failures(self, session: AsyncSession, hosts: list[str]) -> None:
        """Count today as a failure day of each of `hosts`, in the caller's transaction."""
        today, now = utcnow().date(), utcnow()
        hosts = list(dict.fromkeys(hosts))
        days = case(
            (col(DomainHealth.last_failure_day) == today, col(DomainHealth.failure_days)),
            else_=col(DomainHealth.failure_days) + 1,
        )
        # One upsert for the batch, race-free between workers: a new day of failures counts
        # once however many workers see it, and the 7th marks the host unavailable.
        statement = (
            dialect_insert(session, DomainHealth)
            .values(
                [
                    {"id": row_id, "host": host, "failure_days": 1, "last_failure_day": today}
                    for row_id, host in zip(new_ids(len(hosts)), hosts, strict=True)
                ]
            )
            .on_conflict_do_update(
                index_elements=["host"],
                set_={
                    "failure_days": days,
                    "last_failure_day": today,
                    "unavailable_since": case(
                        (
                            (days >= UNAVAILABLE_AFTER_DAYS) & col(DomainHealth.unavailable_since).is_(None),
                            now,
                        ),
                        else_=col(DomainHealth.unavailable_since),
                    ),
                },
            )
            .returning(
                col(DomainHealth.host),
                col(DomainHealth.failure_days),
                col(DomainHealth.last_failure_day),
                col(DomainHealth.unavailable_since),
            )
        )
        rows = (await session.execute(statement)).all()
        for host, failure_days, last_day, unavailable in rows:
            if unavailable is not None and not self._troubled.get(host, _Health(0, None, False)).unavailable:
                log.warning("%s is unavailable: deliveries failed on %d days", host, failure_days)
            self._troubled[host] = _Health(failure_days, last_day, unavailable is not None)

    async def succeeded(self, host: str) -> None:
        if host not in self._troubled:
            return
        await mark_host_reachable(self.context, host)
        self._troubled.pop(host, None)
        self._probes.pop(host, None)


async def mark_host_reachable(context: AppContext, host: str) -> None:
    """`host` answered (a delivery succeeded, or it sent us a signed activity): clear its failure days."""
    async with context.sessions() as session:
        await session.execute(
            update(DomainHealth)
            .where(col(DomainHealth.host) == host)
            .values(failure_days=0, last_failure_day=None, unavailable_since=None, last_success_at=utcnow())
        )
        await session.commit()


# --------------------------------------------------------------------------------------------
# Writing outcomes: many jobs per transaction


@dataclass(frozen=True, slots=True)
class _Outcome:
    job_id: int
    lease: datetime | None
    # Successes are written together, one UPDATE per claimed batch; the rest carry their values.
    done_status: int | None
    values: dict[str, Any] | None
    # A host whose failure today is not on record yet: written in the same transaction.
    failed_host: str | None = None


_WRITE_ONE = (
    update(DeliveryJob)
    .where(
        col(DeliveryJob.id) == bindparam("job_id"),
        # Only while our lease holds: had it run out and another worker taken the job over, that
        # worker's result is the one that counts.
        col(DeliveryJob.locked_until) == bindparam("lease"),
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
        table = table_of(DeliveryJob)
        async with self.context.sessions() as session:
            # On the connection: plain UPDATEs, none of the ORM's bulk-update machinery.
            connection = await session.connection()
            for (lease, status), ids in groups.items():
                result = await connection.execute(
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
                result = await connection.execute(_WRITE_ONE, singles)
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


# --------------------------------------------------------------------------------------------
# Claiming


@dataclass(frozen=True, slots=True)
class SignedPost:
    """A delivery's request, signed and ready to go."""

    target: Target
    body: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class ClaimedDelivery:
    """A delivery job as the worker holds it: the columns a delivery reads, and its lease.

    Not the ORM object: a fan-out claims thousands, and building and reading those cost more
    than the claim's SQL.
    """

    id: int
    activity_id: int
    inbox_url: str
    host: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    # The lease, as written: outcomes are only recorded while it still holds.
    locked_until: datetime
    # Set by `Deliverer.prepare`: the signed request, or the outcome known without one (a blocked
    # domain, a key that cannot sign...).
    request: SignedPost | None = None
    decided: Outcome | None = None


def _claimed_columns() -> tuple[str, ...]:
    """The columns a claim reads: `ClaimedDelivery`'s fields before the lease, in their order,
    so that rows become jobs by position (a sixth of the cost of reading each column by name)."""
    names = [field.name for field in fields(ClaimedDelivery)]
    columns = tuple(names[: names.index("locked_until")])
    missing = set(columns) - set(table_of(DeliveryJob).c.keys())
    assert not missing, f"ClaimedDelivery's fields before locked_until must be DeliveryJob columns: {missing}"
    return columns


_CLAIMED_COLUMNS = _claimed_columns()


async def claim_deliveries(context: AppContext, limit: int, lease: timedelta) -> list[ClaimedDelivery]:
    """Lease up to `limit` due delivery jobs."""
    now = utcnow()
    until = now + lease
    table = table_of(DeliveryJob)
    statement = (
        update(table)
        .where(table.c.id.in_(due_jobs(DeliveryJob, now=now, limit=limit).scalar_subquery()))
        .values(locked_until=until)
        .returning(*(table.c[name] for name in _CLAIMED_COLUMNS))
    )
    async with context.sessions() as session:
        rows = (await session.execute(statement)).all()
        await session.commit()
    # By position: the row holds `_CLAIMED_COLUMNS`, which mypy cannot count.
    job: Callable[..., ClaimedDelivery] = ClaimedDelivery
    return [job(*row, until) for row in rows]


# --------------------------------------------------------------------------------------------
# The deliverer


@dataclass(frozen=True)
class _Prepared:
    """An activity ready to send: serialised once, whatever the number of inboxes."""

    uri: str
    body: bytes
    digest: str
    key_id: str
    private_key_pem: bytes


@dataclass
class DeliveryStats:
    """Counters for logs, tests and the benchmark."""

    requests: int = 0
    done: int = 0
    retried: int = 0
    failed: int = 0
    postponed: int = 0


class Deliverer:
    """Runs delivery jobs. One per worker: it owns that worker's breakers, host limits and caches."""

    def __init__(
        self,
        context: AppContext,
        *,
        client: httpx.AsyncClient | None = None,
        gates: HostGates | None = None,
    ) -> None:
        self.context = context
        self.client = client or context.http
        self.gates = gates or HostGates()
        self.health = DomainHealthBook(context)
        self.writer = OutcomeWriter(context, self.health)
        self.stats = DeliveryStats()
        # A fan-out's jobs all want the same activity: one load serves them (and the batches
        # after), however many ask at once.
        self._activities = ReadCache(ttl=ACTIVITY_CACHE_TTL, limit=ACTIVITY_CACHE_SIZE)
        # Followers' inboxes are the same for every post: each is parsed once (least recently
        # used out first). A URL no request can go to raises each time, and is not kept.
        self._target = functools.lru_cache(maxsize=TARGET_CACHE_SIZE)(parse_target)
        self._date_second = -1
        self._date_text = ""
        self._user_agent = self.client.headers.get("User-Agent")
        self._post_bytes = poster_for(self.client, read_limit=MAX_RESPONSE_BYTES)

    async def __call__(self, job: ClaimedDelivery) -> None:
        """Deliver one job and record what came of it."""
        if job.request is None and job.decided is None:
            await self.prepare([job])
        outcome = job.decided if job.decided is not None else await self._send(job)
        if outcome.verdict is Verdict.DONE and outcome.status is not None:
            await self.writer.done(job, outcome.status)
            self.stats.done += 1
            return
        values = self._values(job, outcome)
        failed_host = job.host if outcome.host_failed and self.health.to_record(job.host) else None
        await self.writer.write(job, values, failed_host=failed_host)
        # Counted once recorded, so that the counts say what the database holds.
        if values["new_state"] == JobState.FAILED:
            self.stats.failed += 1
        elif outcome.verdict is Verdict.POSTPONE:
            self.stats.postponed += 1
        else:
            self.stats.retried += 1

    async def prepare(self, jobs: list[ClaimedDelivery]) -> None:
        """What a claimed batch needs before its requests: every check that asks no host, and
        the signatures, all made in one call to the signing process.

        Each job comes out carrying its signed request (`request`) or the outcome already known
        (`decided`). Done once per batch rather than once per job: a fan-out's jobs share their
        activity, key, domain policy and Date header, and a wait on the signing process per job
        cost more than everything else done here.
        """
        await self.health.refresh()
        policy = await self.context.domain_policy.current()
        # The batch's activities, loaded together (a fan-out's jobs share one; retries may not).
        activity_ids = list(dict.fromkeys(job.activity_id for job in jobs))
        loaded = await asyncio.gather(*(self._prepared(activity_id) for activity_id in activity_ids))
        activities = dict(zip(activity_ids, loaded, strict=True))
        checked: list[tuple[ClaimedDelivery, Target, _Prepared]] = []
        for job in jobs:
            # A domain block (or the allowlist) refuses the host: failed with the reason, never sent.
            refused = policy.refuses_delivery(job.host, job.created_at)
            if refused is not None:
                job.decided = Outcome(Verdict.FAILED, error=refused, attempted=False)
                continue
            prepared = activities[job.activity_id]
            if prepared is None:
                job.decided = Outcome(
                    Verdict.FAILED, error="the activity is no longer stored", attempted=False
                )
                continue
            try:
                target = self._target(job.inbox_url)
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:
                job.decided = Outcome(
                    Verdict.FAILED, error=f"unusable inbox URL: {error}"[:500], attempted=False
                )
                continue
            checked.append((job, target, prepared))
        # After the checks above, so that a job they fail does not take an unavailable host's
        # probe of the day from one that would have gone.
        skipped = await self.health.skip_reasons([(job.id, job.host) for job, _, _ in checked])
        to_send: list[tuple[ClaimedDelivery, Target, _Prepared]] = []
        for job, target, prepared in checked:
            skip = skipped.get(job.id)
            if skip is not None:
                job.decided = Outcome(Verdict.FAILED, error=skip, attempted=False)
                continue
            # No signature for a host whose circuit is open: the job is postponed anyway.
            wait = self.gates.open_for(job.host)
            if wait is not None:
                job.decided = _postponed(wait)
                continue
            to_send.append((job, target, prepared))
        # Dated after every wait above, right before signing. A job may still wait for its host's
        # turn afterwards, but within its lease (2 minutes), far inside peers' clock windows.
        date = self._date()
        to_sign: dict[bytes, list[tuple[ClaimedDelivery, UnsignedRequest, Target, _Prepared]]] = {}
        for job, target, prepared in to_send:
            unsigned = prepare_signature_at(
                method="POST",
                authority=target.authority,
                path=target.path,
                date=date,
                body=prepared.body,
                key_id=prepared.key_id,
                content_type=ACTIVITY_JSON,
                digest=prepared.digest,
            )
            to_sign.setdefault(prepared.private_key_pem, []).append((job, unsigned, target, prepared))
        # Several authors' keys: queued together, so the signing process goes from one to the next.
        await asyncio.gather(*(self._sign(pem, items) for pem, items in to_sign.items()))

    async def _sign(
        self, pem: bytes, items: list[tuple[ClaimedDelivery, UnsignedRequest, Target, _Prepared]]
    ) -> None:
        try:
            signatures = await self.context.signer.sign_many(
                pem, [unsigned.signing_string for _, unsigned, _, _ in items]
            )
        except SigningKeyError as error:
            # The author's key cannot sign: no later try would either.
            failed = Outcome(Verdict.FAILED, error=str(error)[:500])
            for job, _, _, _ in items:
                job.decided = failed
            return
        except SigningError as error:
            # The signing process failed twice in a row: postponed, not counted against the job.
            postponed = Outcome(Verdict.POSTPONE, error=str(error)[:500], delay=SIGNING_WAIT, attempted=False)
            for job, _, _, _ in items:
                job.decided = postponed
            return
        user_agent = self._user_agent
        for (job, unsigned, target, prepared), signature in zip(items, signatures, strict=True):
            headers = unsigned.signed(signature)
            if user_agent is not None:
                headers["User-Agent"] = user_agent
            job.request = SignedPost(target, prepared.body, headers)

    async def _send(self, job: ClaimedDelivery) -> Outcome:
        """Send a prepared job's request, within its host's limits, and say what came of it."""
        request = job.request
        assert request is not None, "prepared jobs carry a request or an outcome"
        host = job.host
        gates = self.gates
        wait = gates.admit(host)
        if wait is not None:
            return _postponed(wait)
        outcome: Outcome | None = None
        try:
            await gates.enter(host)
            try:
                # The circuit may have opened while this job waited for its turn.
                wait = gates.open_for(host)
                if wait is None:
                    self.stats.requests += 1
                    try:
                        answer = await self._post_bytes(request.target, request.body, request.headers)
                    except ForbiddenAddressError as error:
                        # Our own guard refused: retrying will not change where the name points.
                        outcome = Outcome(Verdict.FAILED, error=str(error))
                    except httpx.TimeoutException as error:
                        outcome = Outcome(
                            Verdict.RETRY, error=f"timed out: {type(error).__name__}", host_failed=True
                        )
                    except httpx.HTTPError as error:
                        outcome = Outcome(
                            Verdict.RETRY, error=f"{type(error).__name__}: {error}"[:500], host_failed=True
                        )
                    else:
                        outcome = classify(answer.status, answer.retry_after, utcnow())
            finally:
                gates.leave(host)
        finally:
            if outcome is None and wait is None:
                # Cancelled or broken mid-request: a failure, so that a probe is not left hanging.
                gates.failed(host)
        if outcome is None:
            assert wait is not None
            return _postponed(wait)
        if not outcome.contacted:
            gates.released(host)
        elif outcome.host_failed:
            gates.failed(host)
        else:
            gates.succeeded(host)
            await self.health.succeeded(host)
        if outcome.gone:
            await self._mark_gone(job.inbox_url)
        return outcome

    def _date(self) -> str:
        """The Date header, formatted once a second rather than once a request."""
        second = int(time.time())
        if second != self._date_second:
            self._date_second = second
            self._date_text = http_date(datetime.fromtimestamp(second, UTC))
        return self._date_text

    def _values(self, job: ClaimedDelivery, outcome: Outcome) -> dict[str, Any]:
        now = utcnow()
        values: dict[str, Any] = {
            "new_state": JobState.QUEUED,
            "new_attempts": job.attempts + (1 if outcome.attempted else 0),
            # A finished job's is when it was last tried; one still queued gets its next below.
            "new_next_attempt_at": now,
            "new_last_status": outcome.status if outcome.status is not None else job.last_status,
            "new_last_error": outcome.error[:2000] if outcome.error else None,
            "new_finished_at": None,
        }
        verdict = outcome.verdict
        if verdict is Verdict.RETRY and values["new_attempts"] >= MAX_ATTEMPTS:
            verdict = Verdict.FAILED
            values["new_last_error"] = f"gave up after {MAX_ATTEMPTS} attempts: {outcome.error}"[:2000]
        if verdict is Verdict.DONE:
            values.update(new_state=JobState.DONE, new_finished_at=now, new_last_error=None)
        elif verdict is Verdict.FAILED:
            values.update(new_state=JobState.FAILED, new_finished_at=now)
        elif verdict is Verdict.RETRY:
            delay = outcome.retry_after or retry_delay(values["new_attempts"])
            values["new_next_attempt_at"] = now + delay
        else:
            # Spread out, so postponed jobs do not all come back in the same instant.
            values["new_next_attempt_at"] = now + timedelta(seconds=outcome.delay * random.uniform(1.0, 1.2))
            # A busy host or an open circuit says nothing new (the job's last error stays); a
            # signing process that failed does.
            values["new_last_error"] = outcome.error or job.last_error
        return values

    async def _prepared(self, activity_id: int) -> _Prepared | None:
        return await self._activities.get(activity_id, lambda: self._load(activity_id))

    async def _load(self, activity_id: int) -> _Prepared | None:
        async with self.context.sessions() as session:
            row = (
                await session.execute(
                    select(
                        OutboxActivity.uri, OutboxActivity.payload, Account.key_id, Account.private_key_pem
                    )
                    .join(Account, col(Account.id) == col(OutboxActivity.account_id))
                    .where(col(OutboxActivity.id) == activity_id)
                )
            ).first()
        if row is None or not row.private_key_pem:
            return None
        body = json.dumps(row.payload, ensure_ascii=False, separators=(",", ":")).encode()
        return _Prepared(
            uri=row.uri,
            body=body,
            digest=body_digest(body),
            key_id=row.key_id,
            private_key_pem=row.private_key_pem.encode(),
        )

    async def _mark_gone(self, inbox_url: str) -> None:
        """A personal inbox answered 410: its account is gone. A shared inbox speaks for no one account."""
        async with self.context.sessions() as session:
            await session.execute(
                update(Account)
                .where(
                    col(Account.inbox_url) == inbox_url,
                    col(Account.domain).is_not(None),
                    col(Account.gone_at).is_(None),
                    (col(Account.shared_inbox_url).is_(None)) | (col(Account.shared_inbox_url) != inbox_url),
                )
                .values(gone_at=utcnow())
            )
            await session.commit()


def _postponed(delay: float) -> Outcome:
    return Outcome(Verdict.POSTPONE, delay=delay, attempted=False)


def raise_open_file_limit(wanted: int = OPEN_FILES_WANTED) -> None:
    """Raise this process's soft limit on open files towards `wanted` (never past the hard limit).

    Every delivery in flight holds a socket, and aiohttp keeps idle connections open for 15 s
    beyond its pool limit, so a fan-out to a few thousand servers needs more descriptors than the
    common default of 1024; running out would fail deliveries to healthy hosts.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def delivery_queue(context: AppContext, deliverer: Deliverer | None = None) -> QueueSpec[ClaimedDelivery]:
    """The worker's delivery queue, run by `deliverer` (a new one, with its own breakers, by default).

    The signing process starts with the worker, so that the first post does not wait for it.
    """
    raise_open_file_limit()
    deliverer = deliverer or Deliverer(context)
    return QueueSpec(
        name=DELIVERY_QUEUE,
        model=DeliveryJob,
        handler=deliverer,
        concurrency=DELIVERY_CONCURRENCY,
        batch_size=DELIVERY_BATCH,
        lease=DELIVERY_LEASE,
        start=context.signer.start,
        claim=claim_deliveries,
        prepare=deliverer.prepare,
    )
