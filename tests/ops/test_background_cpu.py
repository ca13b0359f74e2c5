"""Work nobody waits for runs in few threads of lower priority, never on the event loop's thread."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from app.ops.background_cpu import NICENESS, BackgroundCpu


def _where() -> tuple[int, int]:
    native = threading.get_native_id()
    return native, os.getpriority(os.PRIO_PROCESS, native)


@pytest.mark.skipif(sys.platform != "linux", reason="threads are reniced on Linux only")
async def test_a_background_thread_runs_at_lower_priority_than_the_loop() -> None:
    cpu = BackgroundCpu(threads=1)
    try:
        loop_priority = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        thread, priority = await cpu.run(_where)
        assert thread != threading.get_native_id()
        assert priority == min(19, loop_priority + NICENESS)
        # The event loop's own thread (requests) keeps its priority.
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_priority
        assert await cpu.run(sum, [1, 2, 3]) == 6
    finally:
        cpu.close()


def test_half_the_cores_at_least_one() -> None:
    assert BackgroundCpu().threads == max(1, (os.cpu_count() or 2) // 2)
