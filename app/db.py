"""The database engine and session factory for one Herold instance."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

# SQLAlchemy's own AsyncSession: SQLModel's subclass deprecates execute(), which we use for updates.
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config import Settings
from app.models.base import table_of

SessionFactory = async_sessionmaker[AsyncSession]


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
            **pool,
        )
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    return create_async_engine(settings.database_url, pool_pre_ping=True, **pool)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web process read while the worker (or the CLI) writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def dialect_insert(session: AsyncSession, model: Any) -> Any:
    """An INSERT into `model`'s table in the session's dialect, so that ON CONFLICT clauses can
    follow (SQLite and PostgreSQL both speak them, each through its own construct)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    builder = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return builder(table_of(model))
