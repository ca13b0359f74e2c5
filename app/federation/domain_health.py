"""Domain availability (`DomainHealth`): a host with failures on 7 distinct (UTC) days, with no
success in between, is unavailable. Its deliveries are dropped without a request (Mastodon does
the same), except one probe per day: the first job for the host on a day on which it has not
failed yet is attempted. It is available again, its failure days cleared, after one success:
that probe, an admin's "retry" on the delivery status page, or `mark_host_reachable` (for the
inbox to call when the host writes to us)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, case, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.db import dialect_insert
from app.models import DomainHealth
from app.models.base import new_ids, utcnow

log = logging.getLogger(__name__)

UNAVAILABLE_AFTER_DAYS = 7
HEALTH_REFRESH = 30.0


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

    def domain_class(self, host: str) -> str:
        """healthy, failing (failed on some day, still tried) or unavailable: the metrics' label."""
        known = self._troubled.get(host)
        if known is None:
            return "healthy"
        return "unavailable" if known.unavailable else "failing"

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
