"""Claiming delivery jobs: the columns a delivery reads, leased in one statement, as plain objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import update

from app.activitypub.delivery_connections import Target
from app.context import AppContext
from app.db import write_session
from app.federation.delivery_policy import Outcome
from app.federation.queue import due_jobs
from app.models import DeliveryJob
from app.models.base import table_of, utcnow


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


async def claim_deliveries(
    context: AppContext, limit: int, lease: timedelta, holder: str | None = None
) -> list[ClaimedDelivery]:
    """Lease up to `limit` due delivery jobs for `holder` (a worker's heartbeat id)."""
    now = utcnow()
    until = now + lease
    table = table_of(DeliveryJob)
    statement = (
        update(table)
        .where(table.c.id.in_(due_jobs(DeliveryJob, now=now, limit=limit).scalar_subquery()))
        .values(locked_until=until, locked_by=holder)
        .returning(*(table.c[name] for name in _CLAIMED_COLUMNS))
    )
    # On SQLite through the write connection: the lease is taken and committed without the loop
    # turning in between, so the write lock is not held while the worker runs other deliveries.
    async with write_session(context.write_sessions) as session:
        rows = (await session.execute(statement)).all()
        await session.commit()
    # By position: the row holds `_CLAIMED_COLUMNS`, which mypy cannot count.
    job: Callable[..., ClaimedDelivery] = ClaimedDelivery
    return [job(*row, until) for row in rows]
