"""Delivery of our activities to remote inboxes: the deliverer, one signed POST per job.

The worker claims delivery jobs (delivery_claims.py) and hands each to a `Deliverer`, which
prepares and signs a claimed batch at once, sends each request, and records the outcome. What it
is made of lives beside it:

- delivery_policy.py: what an inbox's answer means for the job (done, failed for good, retried
  on Mastodon's schedule, Retry-After honoured);
- delivery_gates.py: per-host request limits and the circuit breaker (10 consecutive failures:
  the host's jobs wait 60 s, then one job probes it);
- domain_health.py: domain availability (failures on 7 distinct days: deliveries dropped, one
  probe a day, available again after one success);
- delivery_outcomes.py: outcomes written many jobs per transaction, only while a lease holds.

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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy import update
from sqlmodel import col, select

from app.activitypub.addresses import ForbiddenAddressError
from app.activitypub.delivery_connections import Target, parse_target
from app.activitypub.signatures import UnsignedRequest, body_digest, http_date, prepare_signature_at
from app.activitypub.signing_process import SigningError, SigningKeyError
from app.activitypub.transport import poster_for
from app.context import AppContext
from app.federation.delivery_claims import ClaimedDelivery, SignedPost, claim_deliveries
from app.federation.delivery_gates import HostGates
from app.federation.delivery_outcomes import OutcomeWriter
from app.federation.delivery_policy import MAX_ATTEMPTS, Outcome, Verdict, classify, retry_delay
from app.federation.domain_health import DomainHealthBook
from app.federation.queue import QueueSpec
from app.models import Account, DeliveryJob, JobState, OutboxActivity
from app.models.base import utcnow
from app.queue_names import DELIVERY_QUEUE
from app.services.read_cache import ReadCache

log = logging.getLogger(__name__)
Item = TypeVar("Item")

ACTIVITY_JSON = "application/activity+json"
# Only the status matters; the body is read (to keep the connection reusable) up to this much.
MAX_RESPONSE_BYTES = 1_048_576

# A job whose signature could not be made (the signing process failing) comes back after this.
SIGNING_WAIT = 30.0
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
        # The class the domain was in when the attempt was made, not the one it leads to.
        deliveries = self.context.metrics.deliveries
        domain_class = self.health.domain_class(job.host)
        if outcome.verdict is Verdict.DONE and outcome.status is not None:
            await self.writer.done(job, outcome.status)
            self.stats.done += 1
            deliveries.labels("done", domain_class).inc()
            return
        values = self._values(job, outcome)
        failed_host = job.host if outcome.host_failed and self.health.to_record(job.host) else None
        await self.writer.write(job, values, failed_host=failed_host)
        # Counted once recorded, so that the counts say what the database holds.
        if values["new_state"] == JobState.FAILED:
            self.stats.failed += 1
            kind = "failed"
        elif outcome.verdict is Verdict.POSTPONE:
            self.stats.postponed += 1
            kind = "postponed"
        else:
            self.stats.retried += 1
            kind = "retried"
        deliveries.labels(kind, domain_class).inc()

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
        metrics = self.context.metrics
        try:
            started = time.perf_counter()
            signatures = await self.context.signer.sign_many(
                pem, [unsigned.signing_string for _, unsigned, _, _ in items]
            )
            metrics.signing_seconds.observe(time.perf_counter() - started)
            metrics.signatures.inc(len(signatures))
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
