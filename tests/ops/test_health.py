"""Liveness and readiness, as a load balancer or Kubernetes probe sees them."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import text, update

from app.config import Settings
from app.main import create_app
from app.models import WorkerHeartbeat
from app.models.base import utcnow
from tests.lab import DatabaseFactory, Instance
from tests.processes import ServerProcess, free_port, herold_env, run_herold


async def _ready(instance: Instance, *, want: int, within: float = 10.0) -> httpx.Response:
    end = time.monotonic() + within
    while True:
        response = await instance.client.get("/health/ready")
        if response.status_code == want or time.monotonic() > end:
            return response
        await asyncio.sleep(0.1)


async def test_ready_with_database_schema_and_worker(instance: Instance) -> None:
    live = await instance.client.get("/health")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    ready = await _ready(instance, want=200)
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert checks["database"]["ok"] and checks["migrations"]["ok"] and checks["worker"]["ok"]
    assert checks["worker"]["workers"] == 1


async def test_a_silent_worker_makes_the_instance_unready(instance: Instance) -> None:
    assert (await _ready(instance, want=200)).status_code == 200
    async with instance.context.sessions() as session:
        await session.execute(update(WorkerHeartbeat).values(beat_at=utcnow() - timedelta(minutes=2)))
        await session.commit()
    ready = await instance.client.get("/health/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["failed"] == ["worker"]
    assert "no worker has reported for 1" in body["checks"]["worker"]["error"]
    # Liveness does not care: restarting the web process would not bring the worker back.
    assert (await instance.client.get("/health")).status_code == 200


async def test_a_database_behind_the_code_is_not_ready(instance: Instance) -> None:
    # Ready first (the embedded worker has beaten), so that the migrations are the one failure.
    assert (await _ready(instance, want=200)).status_code == 200
    async with instance.context.sessions() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = '0002'"))
        await session.commit()
    ready = await instance.client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["migrations"]
    assert "run `herold migrate`" in ready.json()["checks"]["migrations"]["error"]


async def test_an_unreachable_database_fails_readiness_but_not_liveness(tmp_path: Path) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"postgresql+asyncpg://herold@127.0.0.1:{free_port()}/herold",
        data_dir=tmp_path,
        secret_key="test-secret-key-of-an-ops-test-instance",
    )
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            assert (await client.get("/health")).status_code == 200
            ready = await client.get("/health/ready")
    finally:
        await app.state.context.aclose()
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["database"]
    assert ready.json()["checks"]["database"]["error"].startswith("the database does not answer")


async def test_serve_is_ready_once_a_separate_worker_runs(tmp_path: Path, databases: DatabaseFactory) -> None:
    port = free_port()
    env = herold_env(
        tmp_path / "data", await databases.new_database_url(), PORT=str(port), EMBEDDED_WORKER="false"
    )
    server = ServerProcess(["serve"], env, tmp_path / "serve.log")
    worker: ServerProcess | None = None
    try:
        base = f"http://127.0.0.1:{port}"
        server.wait_http(f"{base}/health")
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            assert (await client.get("/health")).status_code == 200
            unready = await client.get("/health/ready")
            assert unready.status_code == 503
            assert unready.json()["failed"] == ["worker"]
            worker = ServerProcess(["worker"], env, tmp_path / "worker.log")
            end = time.monotonic() + 60
            while (ready := await client.get("/health/ready")).status_code != 200 and time.monotonic() < end:
                await asyncio.sleep(0.2)
            assert ready.status_code == 200, ready.text + worker.output()
        worker.stop()
        # A clean stop removes the worker's row: readiness sees at once that none is left.
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            assert (await client.get("/health/ready")).json()["failed"] == ["worker"]
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
    assert "Traceback" not in server.output()
    assert run_herold(["--help"], env).returncode == 0
