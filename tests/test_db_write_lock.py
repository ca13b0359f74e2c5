"""Short write transactions on SQLite (app.db.write_session): the write lock is waited for
without stopping the event loop, in steps of about a millisecond, and given up after the timeout."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app import db
from app.config import Settings
from app.db import create_engine, create_session_factory, create_write_engine, write_session


@pytest.fixture
async def writes(tmp_path: Path) -> AsyncIterator[tuple[db.SessionFactory, Path]]:
    path = tmp_path / "h.db"
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{path}", data_dir=tmp_path)  # type: ignore[call-arg]
    engine = create_engine(settings)
    async with engine.begin() as connection:
        await connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        await connection.exec_driver_sql("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)")
    write_engine = create_write_engine(settings, engine)
    assert write_engine is not engine
    try:
        yield create_session_factory(write_engine), path
    finally:
        await write_engine.dispose()
        await engine.dispose()


async def add(factory: db.SessionFactory, name: str) -> None:
    async with write_session(factory) as session:
        await session.execute(text("INSERT INTO item (name) VALUES (:name)"), {"name": name})
        await session.commit()


def names(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [name for (name,) in connection.execute("SELECT name FROM item ORDER BY id")]


async def test_a_lock_held_by_another_process_is_waited_for_while_the_loop_runs(
    writes: tuple[db.SessionFactory, Path],
) -> None:
    factory, path = writes
    # Another process's connection (a worker committing a batch) holds the write lock.
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    writing = asyncio.create_task(add(factory, "waited"))
    await asyncio.sleep(0.1)
    assert not writing.done()
    # The loop kept running while the writer waited (a blocking busy handler would have stopped it).
    assert ticks >= 20
    other.execute("COMMIT")
    released = time.monotonic()
    await writing
    # Taken about a millisecond after it was freed, not after one of SQLite's 50-100 ms sleeps.
    assert time.monotonic() - released < 0.05
    ticker.cancel()
    other.close()
    assert names(path) == ["waited"]


async def test_writers_of_one_process_take_turns_and_all_commit(
    writes: tuple[db.SessionFactory, Path],
) -> None:
    factory, path = writes
    await asyncio.gather(*(add(factory, f"row {number}") for number in range(50)))
    assert sorted(names(path)) == sorted(f"row {number}" for number in range(50))


async def test_a_lock_never_freed_fails_the_write_after_the_timeout(
    writes: tuple[db.SessionFactory, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    factory, path = writes
    monkeypatch.setattr(db, "WRITE_LOCK_TIMEOUT", 0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"):
            await add(factory, "never")
    finally:
        other.execute("ROLLBACK")
        other.close()
    # The connection is usable again once the lock is free.
    await add(factory, "later")
    assert names(path) == ["later"]
