"""Shared fixtures. TEST_DATABASE_URL=postgresql+asyncpg://… runs every database test on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.lab import DatabaseFactory, Instance, Lab, running_lab


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    """Migrated once per run; every instance then gets a copy (SQLite) or a clone (PostgreSQL)."""
    factory = DatabaseFactory(
        tmp_path_factory.mktemp("databases"), os.environ.get("TEST_DATABASE_URL") or None
    )
    asyncio.run(factory.prepare())
    try:
        yield factory
    finally:
        asyncio.run(factory.cleanup())


@pytest.fixture
async def lab(tmp_path: Path, databases: DatabaseFactory) -> AsyncIterator[Lab]:
    async with running_lab(tmp_path, databases) as running:
        yield running


@pytest.fixture
async def instance(lab: Lab) -> Instance:
    """One instance on a.test (plain http, as the loopback lab runs)."""
    return await lab.instance("a.test")
