"""The database engine and session factory for one Herold instance."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

# SQLAlchemy's own AsyncSession: SQLModel's subclass deprecates execute(), which we use for updates.
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config import Settings
from app.models.base import table_of

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            settings.database_url,
            # Several tasks share the file; let SQLite wait for a lock instead of failing at once.
            connect_args={"timeout": 30},
        )
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    return create_async_engine(settings.database_url, pool_size=10, max_overflow=20, pool_pre_ping=True)


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
