"""Work nobody waits for runs in child processes of lower priority: not on the event loop's thread,
not under its GIL, and a child that dies does not take the work after it down."""

from __future__ import annotations

import os
import signal
import sys
from concurrent.futures.process import BrokenProcessPool

import pytest

from app.ops.background_cpu import NICENESS, BackgroundCpu
from app.services.image_processing import MediaInvalid


def _where() -> tuple[int, int]:
    return os.getpid(), os.getpriority(os.PRIO_PROCESS, 0)


def _refuse(message: str) -> None:
    raise MediaInvalid(message)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.skipif(sys.platform != "linux", reason="a fork server is there on Linux")
async def test_background_work_runs_in_a_child_process_at_lower_priority() -> None:
    cpu = BackgroundCpu(workers=1)
    try:
        own_priority = os.getpriority(os.PRIO_PROCESS, 0)
        pid, priority = await cpu.run(_where)
        assert pid != os.getpid()
        assert priority == min(19, own_priority + NICENESS)
        # This process keeps its priority (the web processes' and the worker's loop).
        assert os.getpriority(os.PRIO_PROCESS, 0) == own_priority
        assert await cpu.run(sum, [1, 2, 3]) == 6
        # A refusal comes back as the exception the callers handle.
        with pytest.raises(MediaInvalid, match="not a picture"):
            await cpu.run(_refuse, "not a picture")
    finally:
        cpu.close()


@pytest.mark.skipif(sys.platform != "linux", reason="a fork server is there on Linux")
async def test_a_child_that_dies_fails_its_work_only() -> None:
    cpu = BackgroundCpu(workers=1)
    try:
        with pytest.raises(BrokenProcessPool):
            await cpu.run(_die)
        assert await cpu.run(sum, [4, 5]) == 9
    finally:
        cpu.close()


def test_half_the_cores_at_least_one() -> None:
    assert BackgroundCpu().workers == max(1, (os.cpu_count() or 2) // 2)
