"""CPU-heavy work nobody waits for (copying other servers' media, converting queued uploads), run
in a process of lower priority beside the worker, so that it never takes the cores, the GIL or
SQLite's write lock from requests.

The worker copies the pictures of every remote post that reaches a local timeline: each is
decoded, scaled, re-encoded, previewed and blurhashed by Pillow (100-200 ms of CPU for a photo).
Run with `asyncio.to_thread`, as many run at once as the jobs queue claims (8), and on a small
machine they took every core from the web processes answering the inbox. Threads niced 10 levels
down (the next try) gave the cores back but not the GIL: the blurhash reads pixels in Python, and
while a picture thread held the GIL the worker's loop waited for it in the middle of its write
transactions, which the web processes' inbox inserts waited behind (inbox p99 141 ms while 200
pictures were copied, against 26 ms without). So the work runs in child processes of the worker,
at most half the cores' worth, each 10 nice levels below the worker: no GIL in common, and the
scheduler gives requests the cores first. Work a person waits for (an upload processed during its
request) stays on `asyncio.to_thread`.

The children come from multiprocessing's fork server, which imports the media code once: a child
starts in milliseconds, and never inherits the worker's threads or database connections (a plain
fork of a threaded asyncio process may deadlock). The functions run there must be importable by
name and take and return what pickles (paths, sizes, bytes, dataclasses); their exceptions come
back as raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

NICENESS = 10
# What the fork server imports once, so that each child starts with the media code loaded.
PRELOADED_MODULES = ["app.services.media", "app.services.remote_media", "app.services.remote_emojis"]


def _lower_priority() -> None:
    # In the child: the whole process is the background work. Relative to the worker's own
    # niceness (a server started at nice 5 runs these at 15).
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS))


def _process_pool(workers: int) -> Executor:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        # No fork server (not Linux or a BSD): threads at the worker's priority, as before.
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="herold-background")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED_MODULES)
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_lower_priority)


class BackgroundCpu:
    """One per AppContext; its processes start with the first piece of work."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(1, (os.cpu_count() or 2) // 2)
        self._executor: Executor | None = None

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        call = functools.partial(function, *args, **kwargs)
        if self._executor is None:
            self._executor = _process_pool(self.workers)
        try:
            return await loop.run_in_executor(self._executor, call)
        except BrokenProcessPool:
            # A child died (killed, out of memory, perhaps by this very file): the pool is unusable.
            # The next piece of work gets a new one; this one fails as its job does, and the jobs
            # queue tries it again later.
            self.close()
            raise

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


__all__ = ["BackgroundCpu"]
