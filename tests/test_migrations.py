"""Alembic owns the schema: the migrations must build exactly what the models describe, on either backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers every table on the metadata)
from app.config import Settings
from app.db import create_engine
from app.migrations import alembic_config, current_revision, upgrade_database
from tests.lab import DatabaseFactory


def _settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        data_dir=data_dir,
        secret_key="test-secret-key-of-the-lab-instance",
    )


@pytest.fixture
async def empty_database(tmp_path: Path, databases: DatabaseFactory) -> AsyncIterator[Settings]:
    """A database with no tables at all, on the backend this run uses."""
    if not databases.postgres_url:
        yield _settings(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", tmp_path)
        return
    name = f"herold_m_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(databases.postgres_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield _settings(databases.postgres_url.rsplit("/", 1)[0] + f"/{name}", tmp_path)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def schema_differences(settings: Settings) -> list[Any]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
            )
    finally:
        await engine.dispose()


async def table_names(settings: Settings) -> set[str]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


def script_head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def test_migrations_build_exactly_the_models(empty_database: Settings) -> None:
    assert await current_revision(empty_database) is None
    await upgrade_database(empty_database)
    assert await schema_differences(empty_database) == []
    assert set(SQLModel.metadata.tables) <= await table_names(empty_database)
    assert await current_revision(empty_database) == script_head()


async def test_upgrade_twice_is_harmless_and_keeps_rows(empty_database: Settings) -> None:
    """`herold migrate` runs on every deploy, on a database already at head and full of data."""
    await upgrade_database(empty_database)
    engine = create_engine(empty_database)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO instance_setting (key, value, updated_at) VALUES ('name', 'Kept', :now)"),
                {"now": datetime(2026, 1, 1, tzinfo=UTC)},
            )
        await upgrade_database(empty_database)
        async with engine.connect() as connection:
            kept = await connection.execute(text("SELECT value FROM instance_setting WHERE key = 'name'"))
            assert kept.scalar_one() == "Kept"
    finally:
        await engine.dispose()
    assert await current_revision(empty_database) == script_head()
    assert await schema_differences(empty_database) == []


async def test_lab_databases_are_at_head(tmp_path: Path, databases: DatabaseFactory) -> None:
    """The copies every other test runs on are the migrated schema, not something made another way."""
    settings = _settings(await databases.new_database_url(), tmp_path)
    assert await current_revision(settings) == script_head()
    assert await schema_differences(settings) == []


def test_alembic_history_is_linear() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    assert len(scripts.get_heads()) == 1
    assert len(scripts.get_bases()) == 1


def test_compare_detects_a_missing_column(tmp_path: Path) -> None:
    """Guards the guard: a schema that lacks a model column shows up as a difference."""
    engine = create_sync_engine(f"sqlite:///{tmp_path / 'partial.db'}")
    try:
        with engine.begin() as connection:
            SQLModel.metadata.create_all(connection)
            connection.execute(text("ALTER TABLE instance_setting DROP COLUMN updated_at"))
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    finally:
        engine.dispose()
    assert [(d[0], d[2], d[3].name) for d in differences] == [
        ("add_column", "instance_setting", "updated_at")
    ]
