"""Prometheus metrics: what happens in each process, and what the database says about the queues.

Two sources, each where it is true:

- Events counted where they happen (requests and their latency, inbox answers, deliveries, signing
  time) are prometheus-client metrics of the instance. `herold serve` and `herold worker` run as
  several processes, so those commands switch prometheus-client to its multi-process mode
  (`enable_multiprocess_metrics`): each process writes its values to memory-mapped files under
  DATA_DIR/metrics (or PROMETHEUS_MULTIPROC_DIR), and whichever web process answers /metrics sums
  them. A worker's deliveries are thus visible from any web process on the same machine.
- Queue figures and worker heartbeats are read from the database when /metrics is asked: they are
  shared state already, correct across machines, and need no process to have counted anything.
"""

from __future__ import annotations

import contextlib
import hmac
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlmodel import col

from app.context import AppContext
from app.models import BackgroundJob, DeliveryJob, InboxItem, JobState, WorkerHeartbeat
from app.models.base import utcnow
from app.ops.metrics_registry import MULTIPROCESS_ENV, forget_dead_processes
from app.services.inbox_backlog import inbox_backlog

router = APIRouter()


async def _queue_families(context: AppContext) -> list[GaugeMetricFamily]:
    now = utcnow()
    depth = GaugeMetricFamily(
        "herold_queue_depth", "Jobs waiting (queued, due or not), per queue.", labels=["queue"]
    )
    due = GaugeMetricFamily(
        "herold_queue_due", "Jobs due now and not claimed by a worker, per queue.", labels=["queue"]
    )
    oldest = GaugeMetricFamily(
        "herold_queue_oldest_due_age_seconds",
        "Age (since it was created) of the oldest job that is due now, per queue; 0 when none is.",
        labels=["queue"],
    )
    lag = GaugeMetricFamily(
        "herold_worker_lag_seconds",
        "How long past its scheduled time the most overdue unclaimed job is, per queue: "
        "how far the workers are behind.",
        labels=["queue"],
    )
    async with context.sessions() as session:
        for name, table, created in (
            ("inbox", InboxItem, InboxItem.received_at),
            ("delivery", DeliveryJob, DeliveryJob.created_at),
            ("jobs", BackgroundJob, BackgroundJob.created_at),
        ):
            model: Any = table
            queued = col(model.state) == JobState.QUEUED
            waiting = await session.scalar(select(func.count()).select_from(model).where(queued))
            is_due = (
                queued,
                col(model.next_attempt_at) <= now,
                (col(model.locked_until).is_(None)) | (col(model.locked_until) < now),
            )
            row = (
                await session.execute(
                    select(func.count(), func.min(col(created)), func.min(col(model.next_attempt_at))).where(
                        *is_due
                    )
                )
            ).one()
            count, first_created, first_scheduled = row
            depth.add_metric([name], int(waiting or 0))
            due.add_metric([name], int(count or 0))
            oldest.add_metric([name], _age(now, first_created))
            lag.add_metric([name], _age(now, first_scheduled))
        beats = (
            await session.execute(select(col(WorkerHeartbeat.worker_id), col(WorkerHeartbeat.beat_at)))
        ).all()
    heartbeat = GaugeMetricFamily(
        "herold_worker_heartbeat_age_seconds", "Seconds since each worker last reported.", labels=["worker"]
    )
    for worker_id, beat_at in beats:
        heartbeat.add_metric([worker_id], _age(now, beat_at))
    backlog = await inbox_backlog(context)
    backlog_age = GaugeMetricFamily(
        "herold_inbox_backlog_age_seconds",
        "How long the oldest due inbox activity has waited: past herold_inbox_backlog_limit_seconds "
        "the inbox answers 503 with Retry-After.",
        value=backlog.oldest_seconds,
    )
    backlog_limit = GaugeMetricFamily(
        "herold_inbox_backlog_limit_seconds",
        "INBOX_BACKLOG_LIMIT_SECONDS (0: no limit).",
        value=context.settings.inbox_backlog_limit_seconds,
    )
    return [depth, due, oldest, lag, heartbeat, backlog_age, backlog_limit]


def _age(now: datetime, then: Any) -> float:
    if then is None:
        return 0.0
    if isinstance(then, str):  # SQLite's MIN() bypasses the column type: text, UTC
        then = datetime.fromisoformat(then)
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())


class _Collected:
    """Families gathered beforehand (the database is read asynchronously), plus those of a
    registry: one scrape's view, put together in a registry of its own."""

    def __init__(self, families: list[GaugeMetricFamily], registry: CollectorRegistry | None) -> None:
        self.families = families
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        if self.registry is not None:
            yield from self.registry.collect()
        yield from self.families


def _allowed(request: Request, context: AppContext) -> JSONResponse | None:
    """None when the request may read the metrics, else the answer that says why not."""
    settings = context.settings
    token = settings.metrics_token
    networks = settings.metrics_allowed_addresses
    if not token and not networks:
        return JSONResponse({"error": "Not Found"}, status_code=404)
    if networks and request.client is not None:
        import ipaddress

        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(request.client.host)
            if any(address in network for network in networks):
                return None
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return JSONResponse(
            {"error": "metrics need Authorization: Bearer <METRICS_TOKEN>"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return JSONResponse({"error": "metrics are not served to this address"}, status_code=403)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    context: AppContext = request.app.state.context
    refused = _allowed(request, context)
    if refused is not None:
        return refused
    context.metrics.observe_pool(context.engine)
    scrape = CollectorRegistry(auto_describe=False)
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        forget_dead_processes(Path(directory))
        MultiProcessCollector(scrape, path=directory)
    own = None if directory else context.metrics.registry
    scrape.register(_Collected(await _queue_families(context), own))  # type: ignore[arg-type]
    # The classic text format (0.0.4), which every Prometheus version and agent reads.
    body = generate_latest(scrape)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4, headers={"Cache-Control": "no-store"})
