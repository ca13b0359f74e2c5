"""`herold backup` while a real server serves and posts are written, then `herold restore`."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.config import Settings
from app.context import build_context
from app.db import create_engine
from app.services.posting import PostingService
from tests.lab import DatabaseFactory
from tests.processes import HEROLD, ServerProcess, free_port, herold_env, run_herold


async def post_count(database_url: str, data_dir: Path) -> int:
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        data_dir=data_dir,
        secret_key="a-test-secret-key-long-enough-for-the-rule-0123456789",
    )  # type: ignore[call-arg]
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text("SELECT count(*) FROM post"))).scalar_one())
    finally:
        await engine.dispose()


async def actor_key(base: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        actor = await client.get("/users/alice", headers={"Accept": "application/activity+json"})
    assert actor.status_code == 200
    return str(actor.json()["publicKey"]["publicKeyPem"])


async def test_backup_while_serving_and_posting_then_restore(
    tmp_path: Path, databases: DatabaseFactory
) -> None:
    database_url = await databases.new_database_url()
    data_dir = tmp_path / "data"
    port = free_port()
    # No SECRET_KEY: it is generated into DATA_DIR/secret_key, which the backup must carry.
    env = herold_env(data_dir, database_url, PORT=str(port), SECRET_KEY="", LOG_LEVEL="warning")
    created = run_herold(["accounts", "create", "alice", "--password", "correct horse battery"], env)
    assert created.returncode == 0, created.stderr
    (data_dir / "media" / "avatars").mkdir(parents=True)
    (data_dir / "media" / "avatars" / "alice.png").write_bytes(b"\x89PNG not really")

    server = ServerProcess(["serve"], env, tmp_path / "serve.log")
    stop = asyncio.Event()
    written = 0
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database_url, data_dir=data_dir, local_domain=f"localhost:{port}"
    )
    settings.secret_key = (data_dir / "secret_key").read_text().strip()
    context = build_context(settings)

    async def keep_posting() -> None:
        nonlocal written
        posting = PostingService(context)
        author = await posting.local_account("alice")
        while not stop.is_set():
            await posting.create(author, f"post {written}")
            written += 1
            await asyncio.sleep(0.01)

    async def keep_reading(base: str) -> int:
        reads = 0
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            while not stop.is_set():
                assert (await client.get("/@alice")).status_code == 200
                reads += 1
        return reads

    base = f"http://localhost:{port}"
    try:
        server.wait_http(f"{base}/health")
        original_key = await actor_key(base)
        posting = asyncio.create_task(keep_posting())
        reading = asyncio.create_task(keep_reading(base))
        await asyncio.sleep(1.0)
        before = written
        backup = await asyncio.create_subprocess_exec(
            HEROLD,
            "backup",
            str(tmp_path / "backup"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await backup.communicate()
        after = written
        await asyncio.sleep(0.5)
        stop.set()
        await posting
        assert await reading > 0
    finally:
        stop.set()
        await context.aclose()
        server.stop()
    assert backup.returncode == 0, err.decode()
    assert "backed up the" in out.decode()
    assert before > 0 and written > after, "posts were written before, during and after the backup"
    assert "Traceback" not in server.output()

    # Onto a new machine: an empty DATA_DIR and an empty database.
    restored_dir = tmp_path / "restored"
    restored_url = (
        await databases.new_empty_database_url()
        if databases.postgres_url
        else f"sqlite+aiosqlite:///{restored_dir / 'herold.db'}"
    )
    new_port = free_port()
    restored_env = herold_env(
        restored_dir, restored_url, PORT=str(new_port), SECRET_KEY="", LOG_LEVEL="warning"
    )
    restored_env["LOCAL_DOMAIN"] = f"localhost:{port}"  # the same instance, wherever it now listens
    result = run_herold(["restore", str(tmp_path / "backup")], restored_env)
    assert result.returncode == 0, result.stderr
    assert run_herold(["migrate"], restored_env).returncode == 0
    count = await post_count(restored_url, restored_dir)
    assert before <= count <= after, (before, count, after)
    assert (restored_dir / "secret_key").read_text() == (data_dir / "secret_key").read_text()
    assert (restored_dir / "secret_key").stat().st_mode & 0o777 == 0o600
    assert (restored_dir / "media" / "avatars" / "alice.png").read_bytes() == b"\x89PNG not really"

    again = run_herold(["restore", str(tmp_path / "backup")], restored_env)
    assert again.returncode == 1
    assert "not empty" in again.stderr or "exists" in again.stderr
    assert "Traceback" not in again.stderr

    restored_server = ServerProcess(["serve"], restored_env, tmp_path / "restored.log")
    try:
        restored_server.wait_http(f"http://127.0.0.1:{new_port}/health")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{new_port}", timeout=10) as client:
            actor = await client.get(
                "/users/alice", headers={"Accept": "application/activity+json", "Host": f"localhost:{port}"}
            )
        # The same signing key: peers keep verifying what the restored instance signs.
        assert actor.json()["publicKey"]["publicKeyPem"] == original_key
    finally:
        restored_server.stop()


async def test_backup_refuses_a_directory_in_use_and_restore_a_foreign_one(
    tmp_path: Path, databases: DatabaseFactory
) -> None:
    env = herold_env(tmp_path / "data", await databases.new_database_url())
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    refused = run_herold(["backup", str(tmp_path / "full")], env)
    assert refused.returncode == 1
    assert (
        refused.stderr.strip().splitlines()[-1]
        == f"herold: {tmp_path / 'full'} is not empty: back up into a new or empty directory"
    )
    not_a_backup = run_herold(["restore", str(tmp_path / "full")], env)
    assert not_a_backup.returncode == 1
    assert "is not a Herold backup" in not_a_backup.stderr


async def test_postgresql_backup_says_so_when_pg_dump_is_missing(
    tmp_path: Path, databases: DatabaseFactory
) -> None:
    if not databases.postgres_url:
        pytest.skip("PostgreSQL only: SQLite is backed up without an outside tool")
    env = herold_env(tmp_path / "data", await databases.new_database_url())
    env["PATH"] = str(tmp_path / "empty-bin")  # no pg_dump anywhere
    result = run_herold(["backup", str(tmp_path / "backup")], env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("herold: pg_dump is not installed:")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "backup").exists(), "nothing written"
