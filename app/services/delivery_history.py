"""Deliveries over time, for the charts of Admin → Federation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from app.context import AppContext
from app.models import DeliveryJob, JobState
from app.models.base import utcnow


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


def _hour_bucket(dialect: str) -> Any:
    """The hour of finished_at as text 'YYYY-MM-DD HH' (UTC), grouped in the database: a week of
    fan-outs is millions of rows, and only 168 numbers are wanted."""
    finished = col(DeliveryJob.finished_at)
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", finished), "YYYY-MM-DD HH24")
    return func.strftime("%Y-%m-%d %H", finished)  # SQLite keeps UTC without a zone


class DeliveryHistoryService:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def per_hour(self, *, hours: int = 7 * 24) -> HourlyDeliveries:
        now = utcnow().replace(minute=0, second=0, microsecond=0)
        first = now - timedelta(hours=hours - 1)
        dialect = self.context.engine.dialect.name
        bucket = _hour_bucket(dialect).label("hour")
        async with self.context.sessions() as session:
            rows = (
                await session.execute(
                    select(bucket, col(DeliveryJob.state), func.count())
                    .where(
                        col(DeliveryJob.finished_at) >= first,
                        col(DeliveryJob.state).in_([JobState.DONE, JobState.FAILED]),
                    )
                    .group_by(bucket, col(DeliveryJob.state))
                )
            ).all()
        slots = [first + timedelta(hours=offset) for offset in range(hours)]
        index = {slot.strftime("%Y-%m-%d %H"): position for position, slot in enumerate(slots)}
        done = [0] * hours
        failed = [0] * hours
        for hour, state, count in rows:
            position = index.get(hour)
            if position is None:
                continue
            (done if state == JobState.DONE else failed)[position] += int(count)
        return HourlyDeliveries(hours=slots, done=done, failed=failed)
