"""The event metrics of an instance, and prometheus-client's multi-process mode (see app/ops/metrics.py)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
INBOX_ROUTES = frozenset({"/inbox", "/users/{username}/inbox"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Requests: from a cached actor (a few ms) to a page or an inbox POST under load.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A batch of signatures: one (~0.3 ms) to a fan-out batch of hundreds.
SIGNING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def enable_multiprocess_metrics(data_dir: Path) -> Path:
    """Switch this process to prometheus-client's multi-process mode (before any metric is made).

    Process-wide, like the garbage-collector settings: called by `herold serve` and `herold
    worker` only. Files of processes that are gone are removed first, so that the directory does
    not grow with every restart (their counters' disappearance reads as a reset, which
    Prometheus' rate() handles).
    """
    from prometheus_client import values

    directory = Path(os.environ.get(MULTIPROCESS_ENV) or data_dir / "metrics")
    directory.mkdir(parents=True, exist_ok=True)
    forget_dead_processes(directory, pattern="*.db")
    os.environ[MULTIPROCESS_ENV] = str(directory)
    values.ValueClass = values.MultiProcessValue()
    return directory


def forget_dead_processes(directory: Path, pattern: str = "gauge_live*.db") -> None:
    """Remove the files of processes that are gone. At a scrape only the live gauges' files (a
    killed worker's pool connections are no longer in use); at start-up all of them."""
    for file in directory.glob(pattern):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _process_alive(int(pid)):
            with contextlib.suppress(OSError):
                file.unlink()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Metrics:
    """The event metrics of one instance (in a registry of its own: the lab runs several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.request_seconds = Histogram(
            "herold_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template (not the raw path) and method.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.public_cache_hits = Counter(
            "herold_public_cache_hits",
            "Anonymous GETs answered from the public cache (app.public_cache), before the access log "
            "and the request latencies, which count only what the routes answered.",
            registry=registry,
        )
        self.inbox_requests = Counter(
            "herold_inbox_requests",
            "Activities POSTed to our inboxes, by the status we answered (202 accepted, 401 bad signature, …).",
            ["status"],
            registry=registry,
        )
        self.deliveries = Counter(
            "herold_deliveries",
            "Delivery attempts by outcome (done, retried, postponed, failed) and by the health class of "
            "the receiving domain (healthy, failing, unavailable).",
            ["outcome", "domain_class"],
            registry=registry,
        )
        self.signing_seconds = Histogram(
            "herold_signing_batch_duration_seconds",
            "Time to sign one batch of deliveries in the signing process.",
            buckets=SIGNING_BUCKETS,
            registry=registry,
        )
        self.signatures = Counter(
            "herold_signatures", "HTTP signatures made for deliveries.", registry=registry
        )
        self.pool_in_use = Gauge(
            "herold_database_pool_in_use",
            "Database connections checked out of the pools of the live processes.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.pool_size = Gauge(
            "herold_database_pool_size",
            "Connections the live processes' pools hold open (in use or idle).",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.streaming_connections = Gauge(
            "herold_streaming_connections",
            "Open streaming API connections (Server-Sent Events and WebSockets).",
            multiprocess_mode="livesum",
            registry=registry,
        )

    def observe_request(self, scope: MutableMapping[str, Any], status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        self.request_seconds.labels(method if method in _METHODS else "other", template).observe(seconds)
        if template in INBOX_ROUTES and method == "POST":
            self.inbox_requests.labels(str(status)).inc()

    def request_observer(self, engine: AsyncEngine) -> Callable[[MutableMapping[str, Any], int, float], None]:
        """What RequestLogMiddleware calls after each request: its latency, and the pool's use
        at that moment (so that every web process keeps its share of the pool gauges fresh)."""

        def observe(scope: MutableMapping[str, Any], status: int, seconds: float) -> None:
            self.observe_request(scope, status, seconds)
            self.observe_pool(engine)

        return observe

    def observe_pool(self, engine: AsyncEngine) -> None:
        pool: Any = engine.pool
        with contextlib.suppress(AttributeError, TypeError):
            self.pool_in_use.set(pool.checkedout())
            self.pool_size.set(pool.checkedin() + pool.checkedout())
