"""The supervisor of `herold serve` (app.ops.supervisor) with stand-in children: real processes,
started the way it starts Herold's, so that its stopping and giving up can be timed in seconds.
tests/ops/test_serve_layout.py runs it with Herold's own children."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import time
from collections.abc import Iterator

import pytest

from app.ops.supervisor import Supervisor, SupervisorFailed

# A stand-in child: the worker ignores SIGTERM (a process that hangs while stopping); every child
# otherwise sleeps until stopped.
STUBBORN_WORKER = (
    "import signal, sys, time\n"
    "if 'worker' in sys.argv: signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


async def test_a_child_that_keeps_dying_stops_serve_with_a_message_naming_it(
    listening: socket.socket,
) -> None:
    supervisor = Supervisor(
        listening,
        web_processes=1,
        with_worker=False,
        setup_token="token",
        command=[sys.executable, "-c", "import sys; sys.exit(3)"],
        restart_pause=0.01,
    )
    with pytest.raises(SupervisorFailed) as failed:
        await asyncio.wait_for(supervisor.run(), 60)
    assert str(failed.value).startswith(
        "the web process 1 exited 5 times within 60 s (last exited with status 3)"
    )


async def test_stopping_terminates_every_child_and_kills_one_that_hangs(listening: socket.socket) -> None:
    supervisor = Supervisor(
        listening,
        web_processes=2,
        with_worker=True,
        setup_token="token",
        command=[sys.executable, "-c", STUBBORN_WORKER],
        stop_grace=1.0,
    )
    running = asyncio.create_task(supervisor.run())
    deadline = time.monotonic() + 30
    while not all(child.process for child in supervisor.children):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the worker has set its SIGTERM aside

    started = time.monotonic()
    supervisor.stop()
    await asyncio.wait_for(running, 10)

    assert time.monotonic() - started < 5
    statuses = {child.name: child.process.returncode for child in supervisor.children if child.process}
    assert statuses == {
        "web process 1": -signal.SIGTERM,
        "web process 2": -signal.SIGTERM,
        "worker process": -signal.SIGKILL,
    }
