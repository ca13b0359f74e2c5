"""Herold as people run it, for the benchmarks: `herold migrate` then `herold serve`, as `make run` does.

    with ServedHerold() as herold:                   # SQLite in a fresh DATA_DIR, embedded worker
        herold.cli("post", "alice", "Hello")          # any `herold` command, with the same environment
        before = herold.cpu_seconds()                 # every process of the server, children included
        ...
        print(herold.cpu_seconds() - before, herold.rss() / 2**20)

    ServedHerold(database_url="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres", workers=1)
        # the scale-out layout: a database of its own on that server (dropped afterwards),
        # `herold serve` with EMBEDDED_WORKER=false and one `herold worker` beside it

Nothing is configured beyond what the benchmark must: DATA_DIR (a temporary directory), PORT (a free
one), the database, and whatever `env` adds (ALLOWED_PRIVATE_ADDRESSES for loopback peers, say). The
commands run from the temporary directory, so no `.env` of the checkout leaks in, with the server's
logging at its defaults (LOG_LEVEL=info, one line per request) written to DATA_DIR/serve.log.

The CPU and memory counted are those of every process the server is made of, found anew at each
reading by walking /proc: the started commands and all their descendants (web processes, the
worker, the signing process), whatever layout `herold serve` adopts. A child that has exited and
been waited for is still counted, through its parent's cutime/cstime.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Settings a developer's shell may carry that would make the server differ from the default one.
_HEROLD_VARIABLES = (
    "HOST",
    "PORT",
    "LOCAL_DOMAIN",
    "WEB_DOMAIN",
    "HTTPS",
    "DATA_DIR",
    "DATABASE_URL",
    "SECRET_KEY",
    "EMBEDDED_WORKER",
    "EVENT_LOOP",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "ALLOWED_PRIVATE_ADDRESSES",
    "WEB_PROCESSES",
    "WORKERS",
)


def herold_command() -> str:
    """The `herold` of the interpreter running the benchmark (the checkout's .venv under `make bench`)."""
    beside = Path(sys.executable).with_name("herold")
    return str(beside) if beside.exists() else str(ROOT / ".venv" / "bin" / "herold")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ------------------------------------------------------------------------------------------------
# Processes, read from /proc


@dataclass(frozen=True)
class ProcessStat:
    pid: int
    ppid: int
    session: int
    # utime + stime, and the same of its children that exited and were waited for.
    cpu_s: float
    # Of cpu_s, the time in the kernel (stime + cstime): system calls, and on loopback the
    # receiving end's share of the TCP work too.
    system_s: float
    rss_bytes: int
    name: str


def read_stat(pid: int) -> ProcessStat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw.rsplit(")", 1)[1].split()
    # fields[0] is field 3 of proc(5): state, ppid, pgrp, session, …, utime (14), stime, cutime, cstime, … rss (24)
    ticks = sum(int(value) for value in fields[11:15])
    return ProcessStat(
        pid=pid,
        ppid=int(fields[1]),
        session=int(fields[3]),
        cpu_s=ticks / CLOCK_TICKS,
        system_s=(int(fields[12]) + int(fields[14])) / CLOCK_TICKS,
        rss_bytes=int(fields[21]) * PAGE_SIZE,
        name=name,
    )


def process_tree(roots: list[int]) -> list[ProcessStat]:
    """The processes started as `roots` and all their descendants, and anything else in their sessions
    (a process that double-forked away from its parent still belongs to the server)."""
    every: dict[int, ProcessStat] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := read_stat(int(entry))) is not None:
            every[stat.pid] = stat
    sessions = {every[root].session for root in roots if root in every}
    children: dict[int, list[int]] = {}
    for stat in every.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found: set[int] = set()
    pending = [root for root in roots if root in every]
    while pending:
        pid = pending.pop()
        if pid not in found:
            found.add(pid)
            pending.extend(children.get(pid, []))
    found.update(pid for pid, stat in every.items() if stat.session in sessions and sessions)
    return [every[pid] for pid in sorted(found)]


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def role_of(pid: int) -> str:
    """What a server process does, from its command line: web, worker, signer or supervisor."""
    command = command_line(pid)
    if "signing_process" in command:
        return "signer"
    if command.endswith(" worker") or "--child worker" in command:
        return "worker"
    if "--child web" in command or command.endswith(" serve"):
        return "web"
    return "other"


def proportional_set_size(pid: int) -> int | None:
    """PSS: shared pages (the code every forked process shares) split between their users."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


# ------------------------------------------------------------------------------------------------
# The server


class ServedHerold:
    """One Herold instance started by its own commands, stopped (and its data removed) on `stop`."""

    def __init__(
        self,
        *,
        database_url: str | None = None,
        workers: int = 0,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        keep_data: bool = False,
        startup_timeout: float = 60.0,
    ) -> None:
        """`database_url`: None for SQLite in DATA_DIR (the default deployment); a PostgreSQL server's
        URL to run on a new database there. `workers`: 0 for the embedded worker (the default); N to
        start `herold serve` with EMBEDDED_WORKER=false and N `herold worker` processes."""
        self.port = port or free_port()
        self.workers = workers
        self._server_url = database_url
        self._extra_env = dict(env or {})
        self._keep_data = keep_data
        self._startup_timeout = startup_timeout
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._database_name: str | None = None
        self.processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[Any] = []
        self.data_dir = Path()
        self.env: dict[str, str] = {}

    # -- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> ServedHerold:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """`herold migrate`, then the server (and workers); returns once it answers /health."""
        self.migrate()
        self.serve()

    def migrate(self) -> None:
        """A fresh DATA_DIR (and database) and `herold migrate`: the schema, and SECRET_KEY stored
        under DATA_DIR. Seed between this and `serve` to start the server on existing data."""
        self._tempdir = tempfile.TemporaryDirectory(prefix="herold-served-")
        self.data_dir = Path(self._tempdir.name) / "data"
        env = {key: value for key, value in os.environ.items() if key not in _HEROLD_VARIABLES}
        env.update(DATA_DIR=str(self.data_dir), PORT=str(self.port))
        if self._server_url:
            env["DATABASE_URL"] = self._create_database(self._server_url)
        if self.workers:
            env["EMBEDDED_WORKER"] = "false"
        env.update(self._extra_env)
        self.env = env
        self.cli("migrate")

    def serve(self) -> None:
        self.processes.append(self._spawn("serve", "serve.log"))
        for number in range(self.workers):
            self.processes.append(self._spawn("worker", f"worker-{number}.log"))
        self._wait_healthy()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to each started command's process group (as systemd stops a service), SIGKILL
        after `timeout`; then the data directory and database go."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            # Whatever of the group outlived its leader.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        self.processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self._database_name and self._server_url:
            self._drop_database(self._server_url, self._database_name)
            self._database_name = None
        if self._tempdir is not None and not self._keep_data:
            self._tempdir.cleanup()
            self._tempdir = None

    # -- what the benchmarks read -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Where to connect (loopback); requests carry `Host: local_domain`."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def local_domain(self) -> str:
        return self.env.get("LOCAL_DOMAIN", f"localhost:{self.port}")

    @property
    def database_url(self) -> str:
        return self.env.get("DATABASE_URL", f"sqlite+aiosqlite:///{self.data_dir / 'herold.db'}")

    def settings(self, **overrides: Any) -> Any:
        """The server's Settings, for seeding or reading its database from the benchmark itself."""
        from app.config import Settings

        values: dict[str, Any] = {
            "data_dir": self.data_dir,
            "port": self.port,
            "database_url": self.database_url,
            "secret_key": (self.data_dir / "secret_key").read_text().strip(),
        }
        values.update({key.lower(): value for key, value in self._extra_env.items()})
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def pids(self) -> list[int]:
        return [stat.pid for stat in self.tree()]

    def tree(self) -> list[ProcessStat]:
        """Every process of the server right now (see the module's docstring)."""
        return process_tree([process.pid for process in self.processes])

    def cpu_seconds(self) -> float:
        """User + system CPU of every process of the server so far (subtract two readings for a window)."""
        return sum(stat.cpu_s for stat in self.tree())

    def cpu_by_role(self) -> dict[str, float]:
        """CPU so far summed by what the processes do (web, worker, signer, other; see role_of).
        `herold serve` counts as web, though with its defaults it only supervises."""
        totals: dict[str, float] = {}
        for stat in self.tree():
            role = role_of(stat.pid)
            totals[role] = totals.get(role, 0.0) + stat.cpu_s
        return totals

    def rss(self) -> int:
        """Resident set size of all its processes, in bytes (pages shared between forks counted in each)."""
        return sum(stat.rss_bytes for stat in self.tree())

    def pss(self) -> int:
        """Proportional set size of all its processes, in bytes: shared pages counted once overall."""
        return sum(proportional_set_size(stat.pid) or stat.rss_bytes for stat in self.tree())

    def describe(self) -> str:
        """One line per process: what runs, for the benchmark's report."""
        return "\n".join(
            f"  {stat.pid:>7} {stat.name:<16} {stat.cpu_s:>7.2f} s CPU {stat.rss_bytes / 2**20:>7.1f} MB RSS"
            for stat in self.tree()
        )

    def cli(self, *args: str, timeout: float = 300.0) -> str:
        """Run `herold ARGS` against this instance; its standard output (raises on failure)."""
        done = subprocess.run(
            [herold_command(), *args],
            env=self.env,
            cwd=self.data_dir.parent,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"herold {' '.join(args)} exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}"
            )
        return done.stdout.decode()

    def cli_process(self, *args: str) -> subprocess.Popen[bytes]:
        """Start `herold ARGS` against this instance without waiting for it (output in pipes)."""
        return subprocess.Popen(
            [herold_command(), *args],
            env=self.env,
            cwd=self.data_dir.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def log_text(self, name: str = "serve.log") -> str:
        path = self.data_dir.parent / name
        return path.read_text(errors="replace") if path.exists() else ""

    # -- internals ---------------------------------------------------------------------------------

    def _spawn(self, command: str, log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.data_dir.parent / log_name, "ab")
        self._logs.append(log)
        return subprocess.Popen(
            [herold_command(), command],
            env=self.env,
            cwd=self.data_dir.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            # A process group (and session) of its own: stopped as a whole, and counted as a whole.
            start_new_session=True,
        )

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{process.args} exited {process.returncode} while starting:\n"
                        + self.log_text()[-3000:]
                    )
            try:
                with urllib.request.urlopen(f"{self.base_url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"herold serve did not answer /health in {self._startup_timeout:.0f} s")

    def _create_database(self, server_url: str) -> str:
        name = f"herold_served_{uuid.uuid4().hex[:12]}"
        _admin_sql(server_url, f'CREATE DATABASE "{name}"')
        self._database_name = name
        return server_url.rsplit("/", 1)[0] + f"/{name}"

    @staticmethod
    def _drop_database(server_url: str, name: str) -> None:
        with contextlib.suppress(Exception):
            _admin_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_sql(server_url: str, statement: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        dsn = server_url.replace("postgresql+asyncpg://", "postgresql://")
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def layout_name(database_url: str | None) -> str:
    return "PostgreSQL, 1 web process + 1 herold worker" if database_url else "SQLite, as make run starts it"


def deployment(database_url: str | None, env: Mapping[str, str] | None = None) -> ServedHerold:
    """The two layouts issue 16 measures: None for the default one (`make run`: SQLite, `herold
    serve` with its defaults); a PostgreSQL server's URL for the scale-out one as the issue names
    it: one web process (WEB_PROCESSES=1, EMBEDDED_WORKER=false) and one `herold worker`."""
    if database_url is None:
        return ServedHerold(env=env)
    return ServedHerold(database_url=database_url, workers=1, env={"WEB_PROCESSES": "1", **(env or {})})


@contextlib.contextmanager
def served(**options: Any) -> Iterator[ServedHerold]:
    """`with served() as herold:` — a ServedHerold started and stopped around the block."""
    herold = ServedHerold(**options)
    try:
        herold.start()
        yield herold
    finally:
        herold.stop()


# ------------------------------------------------------------------------------------------------
# Profiling: py-spy (pip install py-spy) on every process of the server


class Profiler:
    """py-spy sampling every process of a ServedHerold (children included) while it runs; on `stop`,
    collapsed stacks per process under `directory` and a summary of where the time went.

        profiler = Profiler(herold, Path("profile"))
        profiler.start(); ...; print(profiler.stop())
    """

    def __init__(self, herold: ServedHerold, directory: Path, rate: int = 250) -> None:
        self.herold = herold
        self.directory = directory
        self.rate = rate
        self._spies: list[tuple[int, Path, subprocess.Popen[bytes]]] = []

    def start(self) -> None:
        spy = Path(sys.executable).with_name("py-spy")
        if not spy.exists():
            raise RuntimeError(
                f"--profile needs py-spy: {Path(sys.executable).with_name('pip')} install py-spy"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        for stat in self.herold.tree():
            out = self.directory / f"{stat.pid}-{stat.name}.txt"
            command = [str(spy), "record", "--pid", str(stat.pid), "--rate", str(self.rate)]
            command += ["--format", "raw", "--output", str(out), "--nonblocking"]
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._spies.append((stat.pid, out, process))
        time.sleep(0.5)  # py-spy attaches

    def stop(self, top: int = 25) -> str:
        for _pid, _out, process in self._spies:
            process.send_signal(signal.SIGINT)
        for _pid, _out, process in self._spies:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        lines = [f"profile (py-spy, {self.rate} Hz, active samples only) in {self.directory}:"]
        for pid, out, _process in self._spies:
            lines.append(summarize_collapsed(out, top, f"pid {pid}"))
        self._spies.clear()
        return "\n".join(lines)


def summarize_collapsed(path: Path, top: int, title: str) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks (idle frames
    — the event loop waiting — left out)."""
    if not path.exists():
        return f"{title}: no samples"
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        if any(idle in frames[-1] for idle in ("select (selectors", "poll (", "epoll", "_run_once (uvloop")):
            continue
        count = int(count_text)
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    if not total:
        return f"{title}: no active samples"
    rows = [f"{title}: {total} active samples", "  self %  incl %  function"]
    for frame, count in sorted(own.items(), key=lambda item: -item[1])[:top]:
        rows.append(f"  {count * 100 / total:6.1f}  {inclusive[frame] * 100 / total:6.1f}  {frame[:150]}")
    rows.append("  -- inclusive --")
    for frame, count in sorted(inclusive.items(), key=lambda item: -item[1])[:top]:
        rows.append(f"  {own.get(frame, 0) * 100 / total:6.1f}  {count * 100 / total:6.1f}  {frame[:150]}")
    return "\n".join(rows)
