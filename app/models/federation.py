"""Durable queues of the federation: activities received, activities sent, and their deliveries."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Date, Index
from sqlmodel import Field, SQLModel

from app.models.base import foreign_id, id_field, json_field, timestamp


class JobState(StrEnum):
    QUEUED = "queued"
    DONE = "done"
    # Permanently failed: recorded, never retried.
    FAILED = "failed"


class InboxItem(SQLModel, table=True):
    """A verified activity, written before the inbox answers 202 and processed by the worker."""

    __tablename__ = "inbox_item"
    __table_args__ = (Index("ix_inbox_item_ready", "state", "next_attempt_at"),)

    id: int = id_field()
    # The activity's own id; unique so that a redelivered activity is stored (and processed) once.
    activity_uri: str | None = Field(default=None, max_length=2048, unique=True)
    activity_type: str = Field(default="", max_length=64)
    payload: dict[str, Any] = json_field(dict)
    # The actor whose key signed the request; the handler decides what it may do from this.
    signer_uri: str = Field(default="", max_length=2048)
    # Local account whose personal inbox received it (None for the shared inbox).
    recipient_account_id: int | None = foreign_id("account.id", nullable=True, index=False)
    state: str = Field(default=JobState.QUEUED, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = timestamp()
    # A worker's claim: others skip the row until the lease runs out.
    locked_until: datetime | None = timestamp(nullable=True)
    # The worker holding the lease (its heartbeat id): a dead holder's jobs are taken over at once.
    locked_by: str | None = Field(default=None, max_length=255)
    last_error: str | None = None
    received_at: datetime = timestamp()
    processed_at: datetime | None = timestamp(nullable=True)


class OutboxActivity(SQLModel, table=True):
    """An activity we publish; its JSON is stored once however many inboxes receive it."""

    __tablename__ = "outbox_activity"

    id: int = id_field()
    uri: str = Field(max_length=2048, unique=True)
    activity_type: str = Field(max_length=64)
    # The local account that signs the deliveries.
    account_id: int = foreign_id("account.id")
    payload: dict[str, Any] = json_field(dict)
    created_at: datetime = timestamp()


class DeliveryJob(SQLModel, table=True):
    """One activity to one inbox."""

    __tablename__ = "delivery_job"
    __table_args__ = (Index("ix_delivery_job_ready", "state", "next_attempt_at"),)

    id: int = id_field()
    activity_id: int = foreign_id("outbox_activity.id")
    inbox_url: str = Field(max_length=2048)
    # Host (with port) of inbox_url: per-host concurrency, circuit breaker and domain availability.
    host: str = Field(max_length=255, index=True)
    state: str = Field(default=JobState.QUEUED, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = timestamp()
    locked_until: datetime | None = timestamp(nullable=True)
    # The worker holding the lease (its heartbeat id): a dead holder's jobs are taken over at once.
    locked_by: str | None = Field(default=None, max_length=255)
    last_status: int | None = None
    last_error: str | None = None
    created_at: datetime = timestamp()
    finished_at: datetime | None = timestamp(nullable=True)


class DomainHealth(SQLModel, table=True):
    """Delivery health of a remote host: a host failing on 7 distinct days is unavailable until it answers."""

    __tablename__ = "domain_health"

    id: int = id_field()
    host: str = Field(max_length=255, unique=True)
    failure_days: int = 0
    last_failure_day: date | None = Field(default=None, sa_type=Date)
    unavailable_since: datetime | None = timestamp(nullable=True)
    last_success_at: datetime | None = timestamp(nullable=True)


class WorkerHeartbeat(SQLModel, table=True):
    """One running worker (`herold worker` or the one embedded in `herold serve`): it writes
    `beat_at` every few seconds, so that /health/ready and /metrics can tell a stalled or missing
    worker from an idle one. The row goes when the worker stops cleanly; a killed worker's row ages."""

    __tablename__ = "worker_heartbeat"

    # hostname:pid:random, so that restarts and several machines never share a row.
    worker_id: str = Field(primary_key=True, max_length=255)
    hostname: str = Field(default="", max_length=255)
    pid: int = 0
    started_at: datetime = timestamp()
    beat_at: datetime = timestamp()
