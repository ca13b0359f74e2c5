"""Bad settings and unusable directories, as an operator meets them: the real `herold` command prints
one line that names the key or directory and says what is wrong, and fails."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import ConfigurationError, load_settings

HEROLD = str(Path(sys.executable).with_name("herold"))
SETPRIV = shutil.which("setpriv")
GOOD_KEY = "k" * 43


def herold(
    args: list[str], cwd: Path, *, as_user: int | None = None, **settings: str
) -> subprocess.CompletedProcess[str]:
    """`herold ARGS` with only `settings` in its environment (and no .env: the working directory is empty)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), **settings}
    command = [HEROLD, *args]
    if as_user is not None:
        assert SETPRIV is not None
        command = [SETPRIV, f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups", *command]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("herold: ")
    return lines[0]


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Not under pytest's tmp_path: its parent is private to root, and one test runs herold as nobody.
    path = Path(tempfile.mkdtemp(prefix="herold-config-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_an_unknown_log_level_names_the_key(workdir: Path) -> None:
    line = one_line_failure(herold(["accounts", "list"], workdir, LOG_LEVEL="verbose", DATA_DIR=str(workdir)))
    assert line.startswith("herold: Invalid configuration: LOG_LEVEL: ")
    assert "'debug'" in line


def test_log_levels_in_capitals_are_understood(workdir: Path) -> None:
    assert load_settings(_env_file=None, log_level="WARNING", data_dir=workdir).log_level == "warning"


def test_a_short_secret_key_is_refused_with_how_to_make_one(workdir: Path) -> None:
    line = one_line_failure(herold(["migrate"], workdir, SECRET_KEY="x", DATA_DIR=str(workdir / "data")))
    assert line.startswith("herold: Invalid configuration: SECRET_KEY: too short (1 byte, at least 32")
    assert "secrets.token_urlsafe(48)" in line
    assert not (workdir / "data").exists()


def test_a_short_stored_secret_key_is_refused(workdir: Path) -> None:
    (workdir / "secret_key").write_text("short\n")
    with pytest.raises(ConfigurationError, match=r"secret_key: too short \(5 bytes.*delete the file"):
        load_settings(_env_file=None, data_dir=workdir)


def test_a_check_across_keys_says_configuration_once(workdir: Path) -> None:
    line = one_line_failure(
        herold(["migrate"], workdir, DATABASE_URL="mysql://db/herold", SECRET_KEY=GOOD_KEY)
    )
    assert line == "herold: Invalid configuration: DATABASE_URL must be a sqlite:/// or postgresql:// URL"


def test_a_data_dir_that_is_a_file(workdir: Path) -> None:
    blocker = workdir / "data"
    blocker.write_text("")
    for extra in ({}, {"SECRET_KEY": GOOD_KEY}):
        line = one_line_failure(herold(["migrate"], workdir, DATA_DIR=str(blocker), **extra))
        assert line == f"herold: DATA_DIR {blocker} is a file, not a directory"
    line = one_line_failure(herold(["serve"], workdir, DATA_DIR=str(blocker / "inner")))
    assert (
        line
        == f"herold: DATA_DIR {blocker / 'inner'} cannot be created: {blocker} is a file, not a directory"
    )


def test_a_database_that_is_not_one_fails_in_one_line(workdir: Path) -> None:
    data = workdir / "data"
    data.mkdir()
    (data / "herold.db").write_bytes(b"this is not an SQLite database, only text " * 100)
    line = one_line_failure(herold(["migrate"], workdir, DATA_DIR=str(data)))
    assert line.startswith(f"herold: the database sqlite+aiosqlite:///{data}/herold.db failed: ")
    assert "file is not a database" in line


def test_a_database_path_that_is_a_directory(workdir: Path) -> None:
    (workdir / "data" / "herold.db").mkdir(parents=True)
    line = one_line_failure(herold(["migrate"], workdir, DATA_DIR=str(workdir / "data")))
    assert line == f"herold: the database {workdir / 'data' / 'herold.db'} is a directory, not a file"


@pytest.mark.skipif(
    os.geteuid() == 0 and SETPRIV is None, reason="as root, a read-only directory needs setpriv"
)
def test_a_read_only_data_dir_with_a_database(workdir: Path) -> None:
    """Root writes anywhere, so as root herold runs as nobody here: permissions then hold as for an operator."""
    data = workdir / "data"
    data.mkdir()
    made = herold(["migrate"], workdir, DATA_DIR=str(data))
    assert made.returncode == 0, made.stderr
    assert sqlite3.connect(data / "herold.db").execute("select count(*) from alembic_version").fetchone() == (
        1,
    )
    user = None
    if os.geteuid() == 0:
        user = 65534  # nobody
        for path in (data, *data.iterdir()):
            os.chown(path, user, user)
    data.chmod(0o555)
    try:
        for command in (["migrate"], ["serve"], ["accounts", "list"]):
            line = one_line_failure(herold(command, workdir, as_user=user, DATA_DIR=str(data)))
            assert line == f"herold: DATA_DIR {data} is not writable for this user", command
    finally:
        data.chmod(0o755)


def test_an_unreachable_database_is_one_line(workdir: Path) -> None:
    line = one_line_failure(
        herold(
            ["migrate"], workdir, DATABASE_URL="postgresql://herold@127.0.0.1:1/herold", DATA_DIR=str(workdir)
        )
    )
    assert line.startswith("herold: cannot reach the database postgresql+asyncpg://…@127.0.0.1:1/herold: ")
