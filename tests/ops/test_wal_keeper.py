"""SQLite's write-ahead log stays short while readers and a writer never stop (app.ops.wal_keeper)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from app.ops.wal_keeper import keep_wal_short, restart_log, wal_path

ROW = b"x" * 3000


def _database(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, body BLOB)")


def _readers_and_a_writer(path: Path, stop: threading.Event, written: list[int]) -> list[threading.Thread]:
    """Four readers, each reading every 2 ms, and a writer appending rows (deleting old ones, so the
    database itself stays small), as a busy server's processes do."""

    def read() -> None:
        connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        while not stop.is_set():
            connection.execute("BEGIN")
            connection.execute("SELECT count(*) FROM item").fetchone()
            connection.execute("COMMIT")
            time.sleep(0.002)
        connection.close()

    def write() -> None:
        connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA synchronous=NORMAL")
        # As Herold's write connection (app.db.write_session): it leaves checkpoints to others.
        connection.execute("PRAGMA wal_autocheckpoint=0")
        while not stop.is_set():
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany("INSERT INTO item (body) VALUES (?)", [(ROW,)] * 20)
            connection.execute("DELETE FROM item WHERE id < (SELECT max(id) - 200 FROM item)")
            connection.execute("COMMIT")
            written[0] += 20 * len(ROW)
            time.sleep(0.001)  # a server writes in turns, not back to back
        connection.close()

    threads = [threading.Thread(target=read) for _ in range(4)] + [threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    return threads


async def test_the_log_is_started_over_past_its_limit_under_constant_reads_and_writes(tmp_path: Path) -> None:
    database = tmp_path / "herold.db"
    _database(database)
    stop = threading.Event()
    written = [0]
    largest = last_size = restarts = 0
    limit = 1024 * 1024
    keeper = asyncio.create_task(keep_wal_short(database, every=0.05, restart_at=limit))
    threads = _readers_and_a_writer(database, stop, written)
    try:
        deadline = time.monotonic() + 20
        while written[0] < 40 * limit and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            size = wal_path(database).stat().st_size
            restarts += size < last_size
            largest, last_size = max(largest, size), size
    finally:
        stop.set()
        keeper.cancel()
        for thread in threads:
            await asyncio.to_thread(thread.join)
    assert written[0] >= 10 * limit, "the writer wrote too little to tell"
    # Unattended, SQLite never starts this log over (it only grows: about 120 MB for these writes);
    # here it was emptied again and again. How large it gets between two restarts depends on how
    # busy the machine is (soaks: README, "The write-ahead log and the pictures").
    assert restarts >= 3, (
        f"the log was started over {restarts} times; it reached {largest >> 10} KiB "
        f"after {written[0] >> 10} KiB written"
    )


def test_a_restart_copies_everything_and_empties_the_log(tmp_path: Path) -> None:
    database = tmp_path / "herold.db"
    _database(database)
    with sqlite3.connect(database) as connection:
        connection.executemany("INSERT INTO item (body) VALUES (?)", [(ROW,)] * 500)
    assert wal_path(database).stat().st_size > 0
    done = restart_log(database)
    assert not done.busy and done.log_frames == done.copied_frames == 0
    assert wal_path(database).stat().st_size == 0
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM item").fetchone() == (500,)
