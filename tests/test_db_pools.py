"""Database pools sized from the deployment, with a short wait for a connection."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings
from app.db import create_engine, pool_sizes


def settings(tmp_path: Path, database_url: str, **extra: object) -> Settings:
    return Settings(_env_file=None, database_url=database_url, data_dir=tmp_path, **extra)  # type: ignore[call-arg]


def test_pool_sizes_follow_the_backend_and_the_process(tmp_path: Path) -> None:
    sqlite = settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/h.db")
    postgres = settings(tmp_path, "postgresql+asyncpg://h@db/h")
    web_only = settings(tmp_path, "postgresql+asyncpg://h@db/h", embedded_worker=False)
    assert pool_sizes(sqlite, "serve") == (12, 12)
    assert pool_sizes(postgres, "serve") == (15, 15)
    assert pool_sizes(web_only, "serve") == (10, 10)
    assert pool_sizes(postgres, "worker") == (10, 10)
    assert pool_sizes(postgres, "command") == (4, 4)
    assert pool_sizes(postgres, "heartbeat") == (1, 0)
    assert pool_sizes(settings(tmp_path, "postgresql+asyncpg://h@db/h", database_pool_size=3), "serve") == (
        3,
        3,
    )


async def test_no_request_waits_thirty_seconds_for_a_connection(tmp_path: Path) -> None:
    engine = create_engine(settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/h.db"))
    try:
        assert engine.pool.timeout() == 5.0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
