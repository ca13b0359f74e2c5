"""`herold backup DIR` and `herold restore DIR`: everything an instance needs to come back.

A backup holds the database (SQLite through its online backup API, a consistent copy while the
server writes; PostgreSQL through `pg_dump`, one snapshot transaction), the secret key when it
lives in DATA_DIR, and the media directory. The instance's and the accounts' signing keys are rows
of the database, so they come with it. `manifest.json` says what is in the backup.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from app import __version__
from app.config import Settings, sqlite_database_path
from app.db import create_engine
from app.models.base import utcnow

MANIFEST = "manifest.json"
SQLITE_FILE = "herold.db"
POSTGRESQL_FILE = "herold.pgdump"
SECRET_KEY_FILE = "secret_key"  # noqa: S105  (a file name)
MEDIA_DIR = "media"
# DATA_DIR entries that do not make it "in use": prometheus-client's per-process files, and a
# secret key (every command, `herold restore` too, generates one on first run when SECRET_KEY is
# unset); with an empty database it protects nothing yet, and the backup's replaces it.
_IGNORED_IN_DATA_DIR = frozenset({"metrics", SECRET_KEY_FILE})


class BackupError(Exception):
    """Said in one line; nothing was written, or what was is named."""


@dataclass
class BackupReport:
    directory: Path
    database: str
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def sqlite_path(settings: Settings) -> Path:
    """The database file, by the configuration's one reading of DATABASE_URL."""
    path = sqlite_database_path(settings)
    if path is None:
        raise BackupError("the database is not a SQLite file: there is nothing to copy")
    return path


def libpq_url(settings: Settings) -> str:
    """The DATABASE_URL as pg_dump and pg_restore read it (no SQLAlchemy driver name)."""
    return "postgresql://" + settings.database_url.split("://", 1)[1]


def _tool(name: str, purpose: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed: {purpose} needs PostgreSQL's client tools "
            "(Debian: apt-get install postgresql-client, of the server's major version or newer)"
        )
    return found


def _run(command: list[str], what: str) -> None:
    # The URL (with its password) is passed as an argument to a local tool, never logged.
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise BackupError(f"{what} failed: {reason}")


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while other connections read and write."""
    if not source.exists():
        raise BackupError(f"the SQLite database {source} does not exist")
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30) as origin:
        destination = sqlite3.connect(target)
        try:
            # Pages in steps, so that writers are held up for a moment at a time, not for the copy.
            origin.backup(destination, pages=1024, sleep=0.005)
        finally:
            destination.close()


async def backup(settings: Settings, directory: Path) -> BackupReport:
    # File copies and a child process: all of it off the event loop.
    return await asyncio.to_thread(write_backup, settings, directory)


def write_backup(settings: Settings, directory: Path) -> BackupReport:
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: back up into a new or empty directory")
    # Before anything is written: without the tool there is nothing to back up into.
    pg_dump = None if settings.is_sqlite else _tool("pg_dump", "backing up a PostgreSQL database")
    directory.mkdir(parents=True, exist_ok=True)
    report = BackupReport(directory, "sqlite" if settings.is_sqlite else "postgresql")
    if pg_dump is None:
        _copy_sqlite(sqlite_path(settings), directory / SQLITE_FILE)
        report.files.append(SQLITE_FILE)
    else:
        command = [pg_dump, "--format=custom", "--no-owner", f"--file={directory / POSTGRESQL_FILE}"]
        _run([*command, libpq_url(settings)], "pg_dump")
        report.files.append(POSTGRESQL_FILE)
    key = settings.data_dir / SECRET_KEY_FILE
    if key.exists():
        shutil.copy2(key, directory / SECRET_KEY_FILE)
        (directory / SECRET_KEY_FILE).chmod(0o600)
        report.files.append(SECRET_KEY_FILE)
    else:
        report.notes.append("SECRET_KEY is set in the environment, not kept in DATA_DIR: keep your .env too")
    media = settings.data_dir / MEDIA_DIR
    if media.is_dir():
        shutil.copytree(media, directory / MEDIA_DIR)
        report.files.append(MEDIA_DIR + "/")
    report.notes.append("the instance's and the accounts' signing keys are in the database")
    manifest: dict[str, Any] = {
        "herold_version": __version__,
        "created_at": utcnow().isoformat(),
        "database": report.database,
        "files": report.files,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return report


async def _postgresql_is_empty(settings: Settings) -> bool:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return not tables


def _data_dir_in_use(data_dir: Path) -> list[str]:
    if not data_dir.exists():
        return []
    return sorted(entry.name for entry in data_dir.iterdir() if entry.name not in _IGNORED_IN_DATA_DIR)


def check_restore_target(settings: Settings, directory: Path) -> None:
    """Everything checked before anything is written: a restore never mixes into a living instance."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        raise BackupError(f"{directory} is not a Herold backup (no readable {MANIFEST})") from None
    backend = "sqlite" if settings.is_sqlite else "postgresql"
    if manifest.get("database") != backend:
        raise BackupError(
            f"the backup holds a {manifest.get('database')} database and DATABASE_URL is {backend}: "
            "restore onto the same kind of database"
        )
    in_use = _data_dir_in_use(settings.data_dir)
    if settings.is_sqlite:
        database = sqlite_path(settings)
        in_use = [name for name in in_use if settings.data_dir / name != database]
        if database.exists() and database.stat().st_size > 0:
            raise BackupError(f"the target database {database} exists: restore onto a new, empty database")
    if in_use:
        raise BackupError(
            f"DATA_DIR {settings.data_dir} is not empty ({', '.join(in_use)}): restore onto an empty one"
        )


async def restore(settings: Settings, directory: Path) -> BackupReport:
    await asyncio.to_thread(check_restore_target, settings, directory)
    if not settings.is_sqlite:
        try:
            empty = await _postgresql_is_empty(settings)
        except Exception as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise BackupError(f"cannot open the target database: {reason}") from None
        if not empty:
            raise BackupError("the target database is not empty: restore onto a new, empty database")
    return await asyncio.to_thread(write_restore, settings, directory)


def write_restore(settings: Settings, directory: Path) -> BackupReport:
    report = BackupReport(directory, "sqlite" if settings.is_sqlite else "postgresql")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.is_sqlite:
        target = sqlite_path(settings)
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_sqlite(directory / SQLITE_FILE, target)
        report.files.append(str(target))
    else:
        pg_restore = _tool("pg_restore", "restoring a PostgreSQL database")
        command = [pg_restore, "--no-owner", "--exit-on-error", f"--dbname={libpq_url(settings)}"]
        _run([*command, str(directory / POSTGRESQL_FILE)], "pg_restore")
        report.files.append("database")
    if (directory / SECRET_KEY_FILE).exists():
        key = settings.data_dir / SECRET_KEY_FILE
        shutil.copy2(directory / SECRET_KEY_FILE, key)
        os.chmod(key, 0o600)
        report.files.append(str(key))
    if (directory / MEDIA_DIR).is_dir():
        shutil.copytree(directory / MEDIA_DIR, settings.data_dir / MEDIA_DIR)
        report.files.append(str(settings.data_dir / MEDIA_DIR) + "/")
    return report
