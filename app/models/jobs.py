"""General background work: one row per job, of a kind that names its handler (app.federation.jobs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from app.models.base import id_field, json_field, timestamp
from app.models.federation import JobState


class BackgroundJob(SQLModel, table=True):
    """Claimed, leased and retried like deliveries (app.federation.queue), whatever its kind."""

    __tablename__ = "background_job"
    __table_args__ = (Index("ix_background_job_ready", "state", "next_attempt_at"),)

    id: int = id_field()
    # What to do, e.g. "account.refresh"; the handler registered under it reads `payload`.
    kind: str = Field(max_length=64)
    payload: dict[str, Any] = json_field(dict)
    state: str = Field(default=JobState.QUEUED, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = timestamp()
    locked_until: datetime | None = timestamp(nullable=True)
    # The worker holding the lease (its heartbeat id): a dead holder's jobs are taken over at once.
    locked_by: str | None = Field(default=None, max_length=255)
    last_error: str | None = None
    created_at: datetime = timestamp()
    finished_at: datetime | None = timestamp(nullable=True)
