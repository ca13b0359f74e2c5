"""`herold serve` on more than one core: web processes sharing one listening socket, and the
embedded worker in a process of its own, under a small supervisor.

Why: one Python process uses one core. With the web side and the worker in one process, inbox
requests waited behind the worker's processing on the same event loop, and the second core of a
small machine stayed idle. Here the supervisor binds the socket once (uvicorn's own line says
where), then starts WEB_PROCESSES web processes that all accept on it (the kernel hands each
connection to one of them), and, with EMBEDDED_WORKER, one worker process. There is exactly one
worker process at a time: on SQLite the queues' leases are held by one process only, which is
what lets a restarted worker take over its dead predecessor's jobs at once (app.federation.takeover).
Web processes only add incoming activities and new jobs, which never conflict with the leases.

Children are fresh interpreters (`python -m app.cli serve --child …`), not forks of a process
that already holds threads and an event loop. Each gets a lifeline: the read end of a pipe whose
write end only the supervisor holds. When the supervisor is gone, however it ended (SIGKILL
included), the pipe reads end-of-file and the child stops itself: no orphans.

SIGTERM and SIGINT stop the children gracefully (SIGTERM, then SIGKILL after STOP_GRACE seconds),
then the supervisor. A child that dies is started again after a pause that doubles from one
second; one that dies CRASH_LIMIT times within CRASH_WINDOW seconds stops the whole serve, with a
message naming it and its exit status: a child that cannot start (a broken configuration, a full
disk) must not be restarted forever in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("herold.supervisor")

STOP_GRACE = 20.0
RESTART_PAUSE = 1.0
RESTART_PAUSE_LIMIT = 30.0
CRASH_LIMIT = 5
CRASH_WINDOW = 60.0
# How the supervisor starts a child: `herold serve --child KIND …` in a fresh interpreter.
CHILD_COMMAND = (sys.executable, "-m", "app.cli", "serve", "--child")
# The environment variable that hands the children the setup token the supervisor printed.
SETUP_TOKEN_ENV = "HEROLD_SETUP_TOKEN"  # noqa: S105 (the name of a variable, not a secret)


class SupervisorFailed(Exception):
    """A child kept dying: the message names it; `herold serve` exits with it."""


@dataclass
class Child:
    """One process the supervisor keeps running: its name in messages and its `herold serve --child` arguments."""

    name: str
    arguments: list[str]
    process: asyncio.subprocess.Process | None = None
    crashes: deque[float] = field(default_factory=deque)


class Supervisor:
    def __init__(
        self,
        listening: socket.socket,
        *,
        web_processes: int,
        with_worker: bool,
        setup_token: str,
        command: Sequence[str] = CHILD_COMMAND,
        restart_pause: float = RESTART_PAUSE,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        self.listening = listening
        self.setup_token = setup_token
        # What starts a child, its arguments following (a test puts a stand-in here).
        self.command = list(command)
        self.restart_pause = restart_pause
        self.stop_grace = stop_grace
        self.children = [
            Child(f"web process {number}", ["web", "--listen-fd", str(listening.fileno())])
            for number in range(1, web_processes + 1)
        ]
        if with_worker:
            self.children.append(Child("worker process", ["worker"]))
        self._stopping = asyncio.Event()
        self._failure: str | None = None
        self._lifeline_read = -1

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Run the children until SIGTERM or SIGINT (then return) or until one keeps dying (SupervisorFailed)."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        self._lifeline_read, lifeline_write = os.pipe()
        keepers = [asyncio.create_task(self._keep_running(child), name=child.name) for child in self.children]
        try:
            await self._stopping.wait()
        finally:
            for keeper in keepers:
                keeper.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
            await self._stop_children()
            os.close(lifeline_write)
            os.close(self._lifeline_read)
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        if self._failure is not None:
            raise SupervisorFailed(self._failure)

    async def _keep_running(self, child: Child) -> None:
        pause = self.restart_pause
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                child.process = await self._start(child)
            except OSError as error:
                self._failure = f"the {child.name} could not be started: {error}"
                self.stop()
                return
            status = await child.process.wait()
            if self._stopping.is_set():
                return
            now = time.monotonic()
            child.crashes.append(now)
            while child.crashes and now - child.crashes[0] > CRASH_WINDOW:
                child.crashes.popleft()
            if len(child.crashes) >= CRASH_LIMIT:
                self._failure = (
                    f"the {child.name} exited {len(child.crashes)} times within {CRASH_WINDOW:.0f} s "
                    f"(last {_describe(status)}); stopping (its messages are above)"
                )
                self.stop()
                return
            # A child that ran for a while before it died starts again soon; one that keeps dying
            # at start waits longer each time.
            pause = self.restart_pause if now - started > CRASH_WINDOW else pause
            log.error(
                "the %s (pid %d) %s; starting it again in %.1f s",
                child.name,
                child.process.pid,
                _describe(status),
                pause,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
            pause = min(pause * 2, RESTART_PAUSE_LIMIT)

    async def _start(self, child: Child) -> asyncio.subprocess.Process:
        arguments = [*child.arguments, "--lifeline-fd", str(self._lifeline_read)]
        environment = {**os.environ, SETUP_TOKEN_ENV: self.setup_token}
        return await asyncio.create_subprocess_exec(
            *self.command,
            *arguments,
            # The listening socket for the web processes only: a worker holding it would keep
            # the port bound after the web processes are gone.
            pass_fds=(
                *([self.listening.fileno()] if "--listen-fd" in child.arguments else []),
                self._lifeline_read,
            ),
            env=environment,
            # A session of its own: Ctrl-C in the terminal reaches the supervisor only, which stops
            # the children in order (a child still importing would otherwise die with a traceback).
            start_new_session=True,
        )

    async def _stop_children(self) -> None:
        running = [
            child.process for child in self.children if child.process and child.process.returncode is None
        ]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        try:
            await asyncio.wait_for(asyncio.gather(*(process.wait() for process in running)), self.stop_grace)
        except TimeoutError:
            for process in running:
                if process.returncode is None:
                    log.error("pid %d did not stop within %.0f s; killing it", process.pid, self.stop_grace)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*(process.wait() for process in running))


def _describe(status: int) -> str:
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


def watch_lifeline(fd: int, on_gone: Callable[[], None]) -> None:
    """Call `on_gone()` once the supervisor holding the pipe's other end is gone (end-of-file)."""
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            data = os.read(fd, 64)
        except BlockingIOError:
            return
        if not data:
            loop.remove_reader(fd)
            os.close(fd)
            log.warning("the supervisor is gone; stopping")
            on_gone()

    os.set_blocking(fd, False)
    loop.add_reader(fd, readable)
