"""GET /metrics as Prometheus scrapes it: guarded, in its text format, summed over processes."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.context import build_context
from app.models import Account, DeliveryJob, Follow, FollowState, InboxItem, OutboxActivity
from app.models.base import utcnow
from app.services.accounts import AccountService
from app.services.posting import PostingService
from tests.lab import DatabaseFactory, Lab
from tests.processes import ServerProcess, free_port, herold_env


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return found.get((name, frozenset(labels.items())))


async def test_metrics_are_off_unless_configured(lab: Lab) -> None:
    instance = await lab.instance("a.test")
    assert (await instance.client.get("/metrics")).status_code == 404


async def test_a_token_guards_the_metrics(lab: Lab) -> None:
    instance = await lab.instance("a.test", metrics_token="s3cret-token")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
        refused = await instance.client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "METRICS_TOKEN" in refused.json()["error"]
    # Traffic to be counted: an actor read (by its route template) and an unsigned inbox POST.
    await local(instance.context, "alice")
    assert (
        await instance.client.get("/users/alice", headers={"Accept": "application/activity+json"})
    ).status_code == 200
    assert (
        await instance.client.post(
            "/inbox", content=b"{}", headers={"Content-Type": "application/activity+json"}
        )
    ).status_code == 401
    answer = await instance.client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(answer.text)
    assert (
        value(found, "herold_http_request_duration_seconds_count", method="GET", route="/users/{username}")
        == 1
    )
    # Raw paths never become labels: the cardinality stays bounded.
    assert not any(dict(labels).get("route") == "/users/alice" for _, labels in found)
    assert value(found, "herold_inbox_requests_total", status="401") == 1
    assert value(found, "herold_queue_depth", queue="delivery") == 0
    assert value(found, "herold_streaming_connections") == 0
    assert value(found, "herold_database_pool_size") is not None
    assert any(name == "herold_worker_heartbeat_age_seconds" for name, _ in found)


async def test_allowed_addresses_need_no_token(lab: Lab) -> None:
    # The lab's test client connects from 127.0.0.1.
    inside = await lab.instance("a.test", metrics_allowed_addresses=[ip_network("127.0.0.0/8")])
    assert (await inside.client.get("/metrics")).status_code == 200
    outside = await lab.instance("b.test", metrics_allowed_addresses=[ip_network("10.0.0.0/8")])
    assert (await outside.client.get("/metrics")).status_code == 403
    both = await lab.instance(
        "c.test", metrics_allowed_addresses=[ip_network("10.0.0.0/8")], metrics_token="tok"
    )
    assert (await both.client.get("/metrics")).status_code == 401
    assert (await both.client.get("/metrics", headers={"Authorization": "Bearer tok"})).status_code == 200


async def local(context: object, name: str) -> Account:
    return (await AccountService(context).create_local_account(name, password="x" * 16)).account  # type: ignore[arg-type]


async def test_a_workers_deliveries_show_in_the_web_process_metrics(
    tmp_path: Path, databases: DatabaseFactory
) -> None:
    """Separate processes (multi-process mode): the worker counts, `herold serve` reports."""
    database_url = await databases.new_database_url()
    dead_port = free_port()  # nothing listens: the delivery fails and is retried later
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        local_domain="herold.test",
        https=False,
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key="test-secret-key-of-an-ops-test-instance",
    )
    context = build_context(settings)
    try:
        alice = await local(context, "alice")
        async with context.sessions() as session:
            remote = Account(
                username="f",
                domain=f"127.0.0.9:{dead_port}",
                uri=f"http://127.0.0.9:{dead_port}/users/f",
                inbox_url=f"http://127.0.0.9:{dead_port}/users/f/inbox",
                fetched_at=utcnow(),
            )
            session.add(remote)
            await session.flush()
            session.add(Follow(follower_id=remote.id, followee_id=alice.id, state=FollowState.ACCEPTED))
            await session.commit()
        await PostingService(context).create(alice, "Counted in another process")
    finally:
        await context.aclose()

    port = free_port()
    env = herold_env(
        tmp_path / "data",
        database_url,
        PORT=str(port),
        EMBEDDED_WORKER="false",
        METRICS_TOKEN="tok",
        ALLOWED_PRIVATE_ADDRESSES="127.0.0.0/8",
        LOCAL_DOMAIN="herold.test",
        HTTPS="false",
    )
    server = ServerProcess(["serve"], env, tmp_path / "serve.log")
    worker = ServerProcess(["worker"], env, tmp_path / "worker.log")
    try:
        base = f"http://127.0.0.1:{port}"
        server.wait_http(f"{base}/health")
        found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        async with httpx.AsyncClient(
            base_url=base, timeout=10, headers={"Authorization": "Bearer tok"}
        ) as client:
            end = time.monotonic() + 60
            while time.monotonic() < end:
                found = samples((await client.get("/metrics")).text)
                if any(name == "herold_deliveries_total" for name, _ in found):
                    break
                await asyncio.sleep(0.3)
        deliveries = {key: v for key, v in found.items() if key[0] == "herold_deliveries_total"}
        assert value(found, "herold_deliveries_total", outcome="retried", domain_class="healthy") == 1, (
            deliveries,
            worker.output(),
        )
        assert value(found, "herold_signatures_total") == 1
        assert value(found, "herold_signing_batch_duration_seconds_count") == 1
        # The retried job waits for its next attempt: queued, not due.
        assert value(found, "herold_queue_depth", queue="delivery") == 1
        assert value(found, "herold_queue_due", queue="delivery") == 0
        assert (tmp_path / "data" / "metrics").is_dir()
    finally:
        worker.stop()
        server.stop()
    assert "Traceback" not in server.output()


async def test_queue_figures_come_from_the_database(lab: Lab) -> None:
    # No worker: the job stays due.
    instance = await lab.instance("a.test", metrics_token="tok", embedded_worker=False)
    alice = await local(instance.context, "alice")
    now = utcnow()
    async with instance.context.sessions() as session:
        activity = OutboxActivity(
            uri="http://a.test/x", activity_type="Create", account_id=alice.id, payload={}
        )
        session.add(activity)
        await session.flush()
        session.add(
            DeliveryJob(
                activity_id=activity.id,
                inbox_url="https://b.example/inbox",
                host="b.example",
                created_at=now - timedelta(seconds=90),
                next_attempt_at=now - timedelta(seconds=40),
            )
        )
        await session.commit()
    found = samples((await instance.client.get("/metrics", headers={"Authorization": "Bearer tok"})).text)
    assert value(found, "herold_queue_depth", queue="delivery") == 1
    assert value(found, "herold_queue_due", queue="delivery") == 1
    assert 90 <= (value(found, "herold_queue_oldest_due_age_seconds", queue="delivery") or 0) < 150
    assert 40 <= (value(found, "herold_worker_lag_seconds", queue="delivery") or 0) < 100
    assert value(found, "herold_queue_due", queue="inbox") == 0
    assert value(found, "herold_queue_depth", queue="jobs") == 0


async def test_the_inbox_backlog_and_its_limit_are_exported(lab: Lab) -> None:
    instance = await lab.instance(
        "a.test", metrics_token="tok", embedded_worker=False, inbox_backlog_limit_seconds=60
    )
    async with instance.context.sessions() as session:
        session.add(
            InboxItem(activity_uri="https://b.example/1", next_attempt_at=utcnow() - timedelta(seconds=75))
        )
        await session.commit()
    found = samples((await instance.client.get("/metrics", headers={"Authorization": "Bearer tok"})).text)
    assert 75 <= (value(found, "herold_inbox_backlog_age_seconds") or 0) < 150
    assert value(found, "herold_inbox_backlog_limit_seconds") == 60
