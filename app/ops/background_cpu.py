"""CPU-heavy work nobody waits for (copying other servers' media, converting queued uploads), run
in a few threads of lower priority, so that it never takes the cores from requests.

The worker copies the pictures of every remote post that reaches a local timeline: each is
decoded, scaled, re-encoded, previewed and blurhashed by Pillow (100-200 ms of CPU for a photo).
Run with `asyncio.to_thread`, as many run at once as the jobs queue claims (8), and on a small
machine they take every core from the web processes answering the inbox and the apps. Here at
most half the cores' worth of threads do it, each 10 nice levels below its process (Linux lets a
thread lower its own priority), so the scheduler gives requests the cores first; work a person
waits for (an upload processed during its request) stays on `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

NICENESS = 10


def _lower_priority() -> None:
    # Per thread on Linux (setpriority on a thread id); elsewhere the whole process would be
    # reniced, which must not happen to a web process: skipped.
    if hasattr(threading, "get_native_id") and os.uname().sysname == "Linux":
        thread = threading.get_native_id()
        with contextlib.suppress(OSError):
            # Relative to the process's own niceness: a server started at nice 5 runs these at 15.
            os.setpriority(
                os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + NICENESS)
            )


class BackgroundCpu:
    """One per AppContext; its threads start with the first piece of work."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or max(1, (os.cpu_count() or 2) // 2)
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.threads, thread_name_prefix="herold-background", initializer=_lower_priority
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


__all__ = ["BackgroundCpu"]
