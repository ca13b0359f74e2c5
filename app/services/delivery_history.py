"""Federation over time, for the charts of Admin → Federation and its page per domain.

Everything is counted in the database from the rows the queues keep (delivery jobs and inbox
items), grouped by hour there: a week of fan-outs is millions of rows, and only a few hundred
numbers are wanted.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, func, or_, select
from sqlmodel import col

from app.activitypub.addresses import hostname_problem
from app.context import AppContext
from app.models import DeliveryJob, DomainHealth, InboxItem, JobState
from app.models.base import utcnow
from app.services.viewer import Viewer


@dataclass(frozen=True)
class HourlyDeliveries:
    """Finished deliveries per hour (UTC), oldest hour first; the last hour is the current one."""

    hours: list[datetime]
    done: list[int]
    failed: list[int]

    @property
    def total_done(self) -> int:
        return sum(self.done)

    @property
    def total_failed(self) -> int:
        return sum(self.failed)


WEEK = 7 * 24
# A domain enters the "slowest" ranking only with enough deliveries for an average to mean something.
SLOWEST_MINIMUM_DELIVERIES = 3
# Failed deliveries shown on a domain's page.
RECENT_ERRORS = 10


@dataclass(frozen=True)
class HourlyCounts:
    """One figure per hour (UTC), oldest hour first; the last hour is the current one."""

    hours: list[datetime]
    values: list[int]


@dataclass(frozen=True)
class DomainFigure:
    """A domain's figure in a ranking: a count, or seconds for the slowest."""

    host: str
    value: float
    deliveries: int = 0


@dataclass(frozen=True)
class DeliveryError:
    finished_at: datetime | None
    status: int | None
    error: str | None
    inbox_url: str


@dataclass(frozen=True)
class DomainReport:
    """What the page of one domain shows: its deliveries and incoming activities over the week."""

    host: str
    deliveries: HourlyDeliveries
    incoming: HourlyCounts
    queued: int
    health: DomainHealth | None
    recent_errors: list[DeliveryError]


class UnknownHostName(ValueError):
    """The text given as a domain cannot name one (the message says why)."""


def _hour_bucket(column: Any, dialect: str) -> Any:
    """The hour of a timestamp column as text 'YYYY-MM-DD HH' (UTC), for grouping in the database."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")
    return func.strftime("%Y-%m-%d %H", column)  # SQLite keeps UTC without a zone


def _seconds_between(start: Any, end: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _week_slots(hours: int) -> list[datetime]:
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    first = now - timedelta(hours=hours - 1)
    return [first + timedelta(hours=offset) for offset in range(hours)]


def _slot_index(slots: list[datetime]) -> dict[str, int]:
    return {slot.strftime("%Y-%m-%d %H"): position for position, slot in enumerate(slots)}


def signer_host(signer_uri: str) -> str:
    """The host (with a port, as delivery jobs name hosts) of the actor that signed an activity."""
    try:
        return urlsplit(signer_uri).netloc.rpartition("@")[2].lower()
    except ValueError:
        return ""


def _signed_from(host: str) -> ColumnElement[bool]:
    """Inbox items signed by an actor on `host` (http or https, any path)."""
    escaped = host.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    signer = col(InboxItem.signer_uri)
    return or_(
        signer.like(f"https://{escaped}/%", escape="\\"),
        signer.like(f"http://{escaped}/%", escape="\\"),
    )


def checked_host(text: str) -> str:
    """`text` as a host the queues may name (lower case, an optional port), or UnknownHostName."""
    host = text.strip().lower()
    try:
        parts = urlsplit(f"//{host}")
        name, port = parts.hostname or "", parts.port
    except ValueError:
        raise UnknownHostName(f"{text!r} is not a domain: the part after ':' must be a port number") from None
    if not host or parts.netloc != host or "@" in host:
        raise UnknownHostName(f"{text!r} is not a domain: enter a name such as mastodon.example")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        problem = hostname_problem(name)
        if problem:
            raise UnknownHostName(problem) from None
    del port  # checked by urlsplit: a number from 0 to 65535
    return host


class DeliveryHistoryService:
    def __init__(self, context: AppContext, viewer: Viewer | None = None) -> None:
        """As DeliveryStatusService: only an administrator (or the system) reads the history."""
        self.context = context
        self.viewer = viewer if viewer is not None else Viewer.system()

    async def per_hour(self, *, hours: int = WEEK, host: str | None = None) -> HourlyDeliveries:
        """Finished deliveries per hour, of every domain or of `host` alone."""
        self.viewer.require_admin()
        slots = _week_slots(hours)
        dialect = self.context.engine.dialect.name
        bucket = _hour_bucket(col(DeliveryJob.finished_at), dialect).label("hour")
        query = (
            select(bucket, col(DeliveryJob.state), func.count())
            .where(
                col(DeliveryJob.finished_at) >= slots[0],
                col(DeliveryJob.state).in_([JobState.DONE, JobState.FAILED]),
            )
            .group_by(bucket, col(DeliveryJob.state))
        )
        if host is not None:
            query = query.where(col(DeliveryJob.host) == host)
        async with self.context.sessions() as session:
            rows = (await session.execute(query)).all()
        index = _slot_index(slots)
        done = [0] * hours
        failed = [0] * hours
        for hour, state, count in rows:
            position = index.get(hour)
            if position is None:
                continue
            (done if state == JobState.DONE else failed)[position] += int(count)
        return HourlyDeliveries(hours=slots, done=done, failed=failed)

    async def queue_depth_per_hour(self, *, hours: int = WEEK) -> HourlyCounts:
        """Deliveries waiting at the end of each hour.

        No samples are kept: a job waited at time t if it was created by then and not finished by
        then, so depth(t) = unfinished now + finished after t - created after t, from two hourly
        counts.
        """
        self.viewer.require_admin()
        slots = _week_slots(hours)
        dialect = self.context.engine.dialect.name
        created = _hour_bucket(col(DeliveryJob.created_at), dialect).label("hour")
        finished = _hour_bucket(col(DeliveryJob.finished_at), dialect).label("hour")
        async with self.context.sessions() as session:
            unfinished = await session.scalar(
                select(func.count()).select_from(DeliveryJob).where(col(DeliveryJob.finished_at).is_(None))
            )
            created_rows = (
                await session.execute(
                    select(created, func.count())
                    .where(col(DeliveryJob.created_at) >= slots[0])
                    .group_by(created)
                )
            ).all()
            finished_rows = (
                await session.execute(
                    select(finished, func.count())
                    .where(col(DeliveryJob.finished_at) >= slots[0])
                    .group_by(finished)
                )
            ).all()
        index = _slot_index(slots)
        created_in = [0] * hours
        finished_in = [0] * hours
        for rows, counts in ((created_rows, created_in), (finished_rows, finished_in)):
            for hour, count in rows:
                position = index.get(hour)
                if position is not None:
                    counts[position] += int(count)
        depth = [0] * hours
        created_after = finished_after = 0
        for position in range(hours - 1, -1, -1):
            depth[position] = max(0, int(unfinished or 0) + finished_after - created_after)
            created_after += created_in[position]
            finished_after += finished_in[position]
        return HourlyCounts(hours=slots, values=depth)

    async def most_failing(self, *, limit: int = 10) -> list[DomainFigure]:
        """The domains with the most failed deliveries over the week."""
        self.viewer.require_admin()
        since = _week_slots(WEEK)[0]
        async with self.context.sessions() as session:
            rows = (
                await session.execute(
                    select(col(DeliveryJob.host), func.count().label("failed"))
                    .where(col(DeliveryJob.state) == JobState.FAILED, col(DeliveryJob.finished_at) >= since)
                    .group_by(col(DeliveryJob.host))
                    .order_by(func.count().desc(), col(DeliveryJob.host))
                    .limit(limit)
                )
            ).all()
        return [DomainFigure(host=host, value=float(count), deliveries=int(count)) for host, count in rows]

    async def slowest(self, *, limit: int = 10) -> list[DomainFigure]:
        """The domains whose deliveries took longest on average over the week, from the moment a
        post queued them until the domain accepted them: what a follower there waits for a post,
        retries and the queue included."""
        self.viewer.require_admin()
        since = _week_slots(WEEK)[0]
        dialect = self.context.engine.dialect.name
        waited = func.avg(
            _seconds_between(col(DeliveryJob.created_at), col(DeliveryJob.finished_at), dialect)
        )
        async with self.context.sessions() as session:
            rows = (
                await session.execute(
                    select(col(DeliveryJob.host), waited.label("waited"), func.count())
                    .where(col(DeliveryJob.state) == JobState.DONE, col(DeliveryJob.finished_at) >= since)
                    .group_by(col(DeliveryJob.host))
                    .having(func.count() >= SLOWEST_MINIMUM_DELIVERIES)
                    .order_by(waited.desc(), col(DeliveryJob.host))
                    .limit(limit)
                )
            ).all()
        return [
            DomainFigure(host=host, value=float(seconds or 0.0), deliveries=int(count))
            for host, seconds, count in rows
        ]

    async def incoming_by_domain(self, *, limit: int = 10) -> list[DomainFigure]:
        """The domains that sent the most activities to the inbox over the week."""
        self.viewer.require_admin()
        since = _week_slots(WEEK)[0]
        async with self.context.sessions() as session:
            rows = (
                await session.execute(
                    select(col(InboxItem.signer_uri), func.count())
                    .where(col(InboxItem.received_at) >= since)
                    .group_by(col(InboxItem.signer_uri))
                )
            ).all()
        per_host: dict[str, int] = {}
        for signer, count in rows:
            host = signer_host(signer or "")
            if host:
                per_host[host] = per_host.get(host, 0) + int(count)
        ranked = sorted(per_host.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [DomainFigure(host=host, value=float(count), deliveries=count) for host, count in ranked]

    async def incoming_per_hour(self, host: str, *, hours: int = WEEK) -> HourlyCounts:
        """Activities received per hour from actors on `host`."""
        self.viewer.require_admin()
        slots = _week_slots(hours)
        bucket = _hour_bucket(col(InboxItem.received_at), self.context.engine.dialect.name).label("hour")
        async with self.context.sessions() as session:
            rows = (
                await session.execute(
                    select(bucket, func.count())
                    .where(col(InboxItem.received_at) >= slots[0], _signed_from(host))
                    .group_by(bucket)
                )
            ).all()
        index = _slot_index(slots)
        values = [0] * hours
        for hour, count in rows:
            position = index.get(hour)
            if position is not None:
                values[position] += int(count)
        return HourlyCounts(hours=slots, values=values)

    async def domain_report(self, text: str) -> DomainReport:
        """Everything the page of one domain shows; UnknownHostName when `text` cannot name one."""
        self.viewer.require_admin()
        host = checked_host(text)
        deliveries = await self.per_hour(host=host)
        incoming = await self.incoming_per_hour(host)
        async with self.context.sessions() as session:
            queued = await session.scalar(
                select(func.count())
                .select_from(DeliveryJob)
                .where(col(DeliveryJob.host) == host, col(DeliveryJob.state) == JobState.QUEUED)
            )
            health = (
                await session.scalars(select(DomainHealth).where(col(DomainHealth.host) == host))
            ).first()
            errors = (
                await session.execute(
                    select(
                        col(DeliveryJob.finished_at),
                        col(DeliveryJob.last_status),
                        col(DeliveryJob.last_error),
                        col(DeliveryJob.inbox_url),
                    )
                    .where(col(DeliveryJob.host) == host, col(DeliveryJob.last_error).is_not(None))
                    .order_by(col(DeliveryJob.id).desc())
                    .limit(RECENT_ERRORS)
                )
            ).all()
        return DomainReport(
            host=host,
            deliveries=deliveries,
            incoming=incoming,
            queued=int(queued or 0),
            health=health,
            recent_errors=[DeliveryError(*row) for row in errors],
        )
