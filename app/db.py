"""The database engine and session factory for one Herold instance."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.exc import OperationalError

# SQLAlchemy's own AsyncSession: SQLModel's subclass deprecates execute(), which we use for updates.
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import AsyncAdaptedQueuePool

from app import json_text
from app.config import Settings
from app.models.base import table_of

SessionFactory = async_sessionmaker[AsyncSession]

# How long a write transaction on SQLite waits for the write lock before it fails, as long as
# every other connection waits (`timeout` below).
WRITE_LOCK_TIMEOUT = 30.0
# Between two attempts at the write lock: short, so that a waiter takes the lock about a
# millisecond after it is freed (SQLite's own busy handler sleeps up to 100 ms between tries).
WRITE_LOCK_RETRY = 0.001


# What a process does, which decides how many connections it needs (see `pool_sizes`).
# "heartbeat" is the worker's heartbeat alone (app.ops.heartbeat), beside the process's own pool.
EngineRole = Literal["serve", "worker", "command", "heartbeat"]


def pool_sizes(settings: Settings, role: EngineRole) -> tuple[int, int]:
    """(pool size, overflow) for a process of `role` on this deployment's database.

    SQLite has one writer however many connections there are (and each connection is a thread),
    so a few suffice; PostgreSQL serves many at once, and the web process with the embedded
    worker needs the worker's share besides. Every process may open size + overflow connections:
    keep the sum over all processes under PostgreSQL's max_connections (100 by default).
    DATABASE_POOL_SIZE replaces the size (the overflow is as large again).
    """
    if role == "heartbeat":
        # One connection that nothing else uses: a worker whose pool is taken by its jobs (or by
        # the web requests beside it) must still beat, or it is taken for gone and its jobs are
        # handed to another worker (app.federation.takeover) although it is alive.
        return 1, 0
    if settings.database_pool_size is not None:
        return settings.database_pool_size, settings.database_pool_size
    if role == "command":
        return 4, 4
    with_worker = role == "worker" or settings.embedded_worker
    if settings.is_sqlite:
        return (12, 12) if with_worker else (8, 8)
    if role == "serve" and settings.embedded_worker:
        return 15, 15
    return 10, 10


# JSON columns (activity payloads) written and read with orjson (app.json_text).
JSON_CODEC: dict[str, Any] = {"json_serializer": json_text.dumps, "json_deserializer": json_text.loads}


def create_engine(settings: Settings, role: EngineRole = "serve") -> AsyncEngine:
    size, overflow = pool_sizes(settings, role)
    # A request waits this long for a connection at most, then is answered 503 with Retry-After
    # (app.http_errors): a saturated database sheds load instead of piling up waiters.
    pool = {"pool_size": size, "max_overflow": overflow, "pool_timeout": settings.database_pool_timeout}
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            settings.database_url,
            # Several tasks share the file; let SQLite wait for a lock instead of failing at once.
            connect_args={"timeout": 30},
            **JSON_CODEC,
            **pool,
        )
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    return create_async_engine(settings.database_url, pool_pre_ping=True, **JSON_CODEC, **pool)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web process read while the worker (or the CLI) writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _configure_sqlite_writer(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")
    dbapi_connection.execute("PRAGMA foreign_keys=ON")
    # The commit that finds the WAL past 1,000 pages copies it into the database and syncs the
    # disk (12-15 ms measured here), which on this connection would stop the event loop. The
    # other connections (aiosqlite's, each on a thread of its own: every request's, the worker's
    # deliveries and heartbeat) keep checkpointing as before.
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


class _OnLoopCursor(sqlite3.Cursor):
    async def _async_soft_close(self) -> None:
        """What AsyncSession asks of an async driver's cursor after a statement: an async driver
        reads every row at once here; sqlite3 reads them when asked, on the same thread."""


class _OnLoopConnection(sqlite3.Connection):
    def cursor(self, factory: Any = _OnLoopCursor) -> Any:
        return super().cursor(factory)


class _OnLoopSQLiteDialect(SQLiteDialect_pysqlite):
    """The standard library's sqlite3 driver, called straight from the event loop's thread.

    Marked async so that AsyncEngine and AsyncSession accept it: a call simply never waits, which
    is the point (see `create_write_engine`). Registered as `sqlite+herold_onloop`.
    """

    is_async = True
    supports_statement_cache = True


def create_write_engine(settings: Settings, engine: AsyncEngine) -> AsyncEngine:
    """The engine of `write_session`: on SQLite, one connection whose statements run on the
    event loop's thread; elsewhere `engine` itself.

    Why: SQLite has one write lock for every process, and a transaction holds it from its first
    write until its commit. Through aiosqlite each statement is a round trip to the connection's
    thread and back through the event loop, so the lock stays held while the loop runs whatever
    else is ready (in a busy web process, tens of milliseconds of signature checks), and every
    other process waits that long. Here the statements of a transaction run one after another
    without the loop turning in between: the lock is held only for SQLite's own work, well
    under a millisecond for a batch of inbox rows. What such a transaction may do is therefore
    limited to a few small statements (no reads of unbounded size, no I/O awaited inside).
    One connection per process is enough: SQLite lets one writer write at a time anyway, and the
    pool queues the process's writers in order.
    """
    if not settings.is_sqlite:
        return engine
    registry.register("sqlite.herold_onloop", __name__, _OnLoopSQLiteDialect.__name__)
    write_engine = create_async_engine(
        settings.database_url.replace("sqlite+aiosqlite:", "sqlite+herold_onloop:", 1),
        poolclass=AsyncAdaptedQueuePool,
        **JSON_CODEC,
        pool_size=1,
        max_overflow=0,
        pool_timeout=WRITE_LOCK_TIMEOUT,
        # isolation_level=None: the driver begins no transaction of its own; `write_session`
        # begins each with BEGIN IMMEDIATE. timeout=0: a busy lock is answered at once, and
        # waited for without blocking the loop (`_take_write_lock`).
        connect_args={
            "timeout": 0,
            "isolation_level": None,
            "check_same_thread": False,
            "factory": _OnLoopConnection,
        },
    )
    event.listen(write_engine.sync_engine, "connect", _configure_sqlite_writer)
    return write_engine


@asynccontextmanager
async def write_session(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session from `factory` (the write engine's) for one short write transaction, which the
    caller commits. On SQLite the write lock is taken first: BEGIN IMMEDIATE, tried again every
    millisecond while another process holds it, the event loop free meanwhile.

    Execute through the session: AsyncConnection.execute insists that its driver waited at least
    once and refuses the SQLite connection here (sqlalchemy.exc.AwaitRequired), which never does.
    """
    async with factory() as session:
        connection = await session.connection()
        if connection.dialect.name == "sqlite":
            raw = await connection.get_raw_connection()
            await _take_write_lock(raw.driver_connection)
        yield session


async def _take_write_lock(connection: Any) -> None:
    deadline = time.monotonic() + WRITE_LOCK_TIMEOUT
    while True:
        try:
            connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            # The primary code: SQLITE_BUSY comes with extended codes (a WAL recovery, a snapshot).
            busy = error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() > deadline:
                raise OperationalError("BEGIN IMMEDIATE", None, error) from error
        await asyncio.sleep(WRITE_LOCK_RETRY)


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    # A Session class of its own per factory: hooks listening to an instance's sessions
    # (app.services.kept_callers) hear that instance's only, not every Session in the process.
    own_class = type("InstanceSession", (Session,), {})
    return async_sessionmaker(
        engine, class_=AsyncSession, expire_on_commit=False, sync_session_class=own_class
    )


def sync_session_class(factory: SessionFactory) -> type[Session]:
    """The Session class behind `factory`'s AsyncSessions (to listen to their events)."""
    own_class: type[Session] = factory.kw["sync_session_class"]
    return own_class


def dialect_insert(session: AsyncSession, model: Any) -> Any:
    """An INSERT into `model`'s table in the session's dialect, so that ON CONFLICT clauses can
    follow (SQLite and PostgreSQL both speak them, each through its own construct)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    builder = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return builder(table_of(model))
