"""An upgrade as an operator makes it: a database of the previous release, full of rows, migrated to
the current schema with `herold migrate`, on this run's backend. Every row must still be there.

The previous release's schema is the migration before the newest; its rows are made generically
from the reflected schema (one per table, foreign keys pointing at the rows made before), so the
test follows new migrations by itself. A migration that rewrites data on purpose says here how.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Integer, MetaData, Numeric, String, Table, select
from sqlalchemy.engine import Connection

from app.config import Settings
from app.db import create_engine
from app.migrations import alembic_config, current_revision, upgrade_database
from tests.processes import herold_env, run_herold
from tests.test_migrations import empty_database, script_head  # noqa: F401  (the fixture, on this run's backend)

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def previous_release() -> str:
    scripts = ScriptDirectory.from_config(alembic_config())
    head = scripts.get_revision(script_head())
    assert head is not None and isinstance(head.down_revision, str), "needs two migrations, linear"
    return head.down_revision


def _value(table: Table, column: Any, rows: dict[str, dict[str, Any]], postgresql: bool) -> Any:
    for key in column.foreign_keys:
        referred = rows.get(key.column.table.name)
        if referred is None:  # a table later in the order (a cycle): left empty where it may be
            return None if column.nullable else 1
        return referred[key.column.name]
    kind = column.type
    if isinstance(kind, Boolean):
        return True
    if isinstance(kind, Integer):
        return 7 if not column.primary_key else 1
    if isinstance(kind, Float | Numeric):
        return Decimal("1.5") if isinstance(kind, Numeric) and kind.asdecimal else 1.5
    if isinstance(kind, DateTime):
        return WHEN if postgresql else WHEN.replace(tzinfo=None)
    if isinstance(kind, Date):
        return date(2026, 1, 2)
    if isinstance(kind, JSON):
        return ["kept"]
    if isinstance(kind, String):
        text = f"{table.name}.{column.name}"
        return text[: kind.length] if kind.length else text
    raise AssertionError(f"no sample value for {table.name}.{column.name} ({kind!r}): add one here")


def fill_every_table(connection: Connection) -> dict[str, dict[str, Any]]:
    metadata = MetaData()
    metadata.reflect(connection)
    postgresql = connection.dialect.name == "postgresql"
    rows: dict[str, dict[str, Any]] = {}
    for table in metadata.sorted_tables:
        if table.name == "alembic_version":
            continue
        row = {column.name: _value(table, column, rows, postgresql) for column in table.columns}
        connection.execute(table.insert().values(**row))
        rows[table.name] = row
    return rows


def read_back(connection: Connection, names: list[str]) -> dict[str, list[dict[str, Any]]]:
    metadata = MetaData()
    metadata.reflect(connection, only=names)
    return {
        name: [dict(row._mapping) for row in connection.execute(select(metadata.tables[name]))]
        for name in names
    }


def _same(stored: Any, written: Any) -> bool:
    if isinstance(stored, datetime) and isinstance(written, datetime):

        def utc(moment: datetime) -> datetime:
            return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment

        return utc(stored) == utc(written)
    return bool(stored == written)


async def test_a_full_database_of_the_previous_release_upgrades_with_every_row(
    empty_database: Settings,  # noqa: F811
    tmp_path: Path,
) -> None:
    previous = previous_release()
    await upgrade_database(empty_database, previous)
    engine = create_engine(empty_database)
    try:
        async with engine.begin() as connection:
            written = await connection.run_sync(fill_every_table)
    finally:
        await engine.dispose()
    assert len(written) >= 20, sorted(written)

    # The upgrade itself as the operator runs it.
    env = herold_env(tmp_path / "data", empty_database.database_url)
    migrated = run_herold(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert await current_revision(empty_database) == script_head()

    engine = create_engine(empty_database)
    try:
        async with engine.connect() as connection:
            stored = await connection.run_sync(read_back, sorted(written))
    finally:
        await engine.dispose()
    for name, row in written.items():
        assert len(stored[name]) == 1, f"{name}: {len(stored[name])} rows after the upgrade"
        kept = stored[name][0]
        changed = {
            column: (kept.get(column), value)
            for column, value in row.items()
            if not _same(kept.get(column), value)
        }
        assert not changed, f"{name} changed in the upgrade: {changed}"
