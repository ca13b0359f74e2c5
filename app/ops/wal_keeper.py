"""Keeping SQLite's write-ahead log short while the server is never idle.

SQLite copies the WAL into the database (a checkpoint) after commits that find it past 1,000
pages, but it can start the log over from its beginning only at a moment when no reader still
reads from the log and no write has begun since the copy. Herold's processes read all the time (a
busy web process nearly always has a statement in flight) and write hundreds of times a second,
and under sustained load that moment never came: in a 3-minute soak the WAL reached 1.6 GB beside
a 130 MB database, fully copied yet never restarted. Such a log costs disk, every read searches
its index (a hash table per 4,096 frames, newest first), and the index's shared memory grew every
process's RSS by about 1 MB a minute.

So the process that runs the worker looks at the log's size every CHECK_EVERY seconds and, past
RESTART_AT, asks for a TRUNCATE checkpoint: SQLite holds new writers back, waits for the readers
still in the log (Herold's reads are single statements: milliseconds), copies what is left and
starts the log over at zero bytes. A PASSIVE checkpoint goes first, without holding anyone back,
so that little is left to copy while writers wait; one attempt holds them back WAIT_FOR_READERS at
most, attempts are repeated for PATIENCE, and a restart that could not be had then is tried again
at the next check.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CHECK_EVERY = 2.0
RESTART_AT = 32 * 1024 * 1024
# While it waits for the readers, writers wait for it: a short wait, tried again if need be.
WAIT_FOR_READERS = 0.05
# How long one check keeps trying, and how often.
PATIENCE = 1.0
RETRY_AFTER = 0.005


@dataclass(frozen=True)
class Checkpoint:
    """What SQLite answered: whether the restart was refused for now, and the log's frames."""

    busy: bool
    log_frames: int
    copied_frames: int


def wal_path(database: Path) -> Path:
    return database.with_name(database.name + "-wal")


def restart_log(database: Path, wait: float = WAIT_FOR_READERS, patience: float = PATIENCE) -> Checkpoint:
    """Copy the log into the database and start it over (blocking: run it on a thread)."""
    connection = sqlite3.connect(database, timeout=wait, isolation_level=None)
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        deadline = time.monotonic() + patience
        while True:
            busy, log_frames, copied = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            # Busy at once (-1 frames) while another connection runs its own checkpoint after a
            # commit, which SQLite does not wait for; or busy after `wait` for the write lock or
            # the readers. Either passes within milliseconds on a busy server.
            if not busy or time.monotonic() >= deadline:
                return Checkpoint(bool(busy), log_frames, copied)
            time.sleep(RETRY_AFTER)
    finally:
        connection.close()


def _wal_size(database: Path) -> int:
    try:
        return wal_path(database).stat().st_size
    except FileNotFoundError:
        return 0


async def keep_wal_short(database: Path, *, every: float = CHECK_EVERY, restart_at: int = RESTART_AT) -> None:
    """Run until cancelled: start the log over whenever it has grown past `restart_at` bytes. Never
    fails (it runs in the worker's task group): a busy or locked database is tried again later."""
    while True:
        await asyncio.sleep(every)
        try:
            size = await asyncio.to_thread(_wal_size, database)
            if size < restart_at:
                continue
            done = await asyncio.to_thread(restart_log, database)
        except Exception:
            log.exception("the write-ahead log of %s could not be restarted; trying again shortly", database)
            continue
        if done.busy:
            log.info("the write-ahead log (%d MB) was not restarted: readers stayed; next check", size >> 20)
        else:
            log.debug("the write-ahead log (%d MB) was copied and restarted", size >> 20)


__all__ = ["Checkpoint", "keep_wal_short", "restart_log", "wal_path"]
