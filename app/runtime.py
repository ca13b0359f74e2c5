"""Process-wide settings of the long-running commands (`herold serve`, `herold worker`)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import os
import threading
import time
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

from app.config import ConfigurationError

Result = TypeVar("Result")

log = logging.getLogger(__name__)

# glibc's mallopt parameter for the number of malloc arenas (malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8
# Arenas a server process may have. glibc's default is 8 per core (16 here), and every thread that
# allocates (aiosqlite's one per connection, the thread pool's) gets one of its own until then.
MALLOC_ARENAS = 2
# How often a server process hands malloc's free pages back to the kernel (malloc_trim).
MALLOC_TRIM_SECONDS = 30.0

# The youngest generation is collected after this many allocations (CPython's default is 700).
YOUNG_COLLECTION_THRESHOLD = 10_000


def tune_garbage_collection() -> None:
    """Fewer and shorter garbage-collection pauses in a server process.

    A full collection walks every object the process holds: the imported modules, the ORM's
    metadata, the caches. Under load such a pass held every request in flight for tens of
    milliseconds (bench/bench_inbox.py: p99 92 ms, 39 ms with this). What is alive once the
    process has started is frozen out of the collector's sight, and request garbage, which dies
    young, is collected in fewer, larger passes. Reference counting still frees almost everything
    at once; only cycles wait for a pass.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 20, 20)


def tune_memory_allocator() -> bool:
    """Keep a long-running process's native memory from creeping up (glibc only; elsewhere nothing).

    Under the soak (bench/soak.py) every server process's RSS grew steadily although what Python
    and C code held did not: glibc's malloc kept the memory freed by threads that come and go (an
    aiosqlite connection is a thread; a pool's overflow connections open and close all the time)
    in up to 16 arenas, each at its own high-water mark, and gives back only the top of each. With
    two arenas the threads share the free memory, and every MALLOC_TRIM_SECONDS malloc_trim()
    returns the free pages inside the arenas to the kernel (a few milliseconds for tens of MB;
    ctypes releases the GIL, so the event loop goes on meanwhile). Called first thing in `herold
    serve` and `herold worker`, before their threads start. Whether it applied.
    """
    libc = _glibc()
    if libc is None:
        return False
    # An operator's own choice (MALLOC_ARENA_MAX, or GLIBC_TUNABLES=glibc.malloc.arena_max=N) stands.
    if "MALLOC_ARENA_MAX" not in os.environ and "arena_max" not in os.environ.get("GLIBC_TUNABLES", ""):
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    threading.Thread(target=_trim_forever, args=(libc,), name="malloc-trim", daemon=True).start()
    return True


def _glibc() -> ctypes.CDLL | None:
    if os.name != "posix":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        # gnu_get_libc_version exists in glibc alone: musl and the BSDs' libc have no malloc_trim.
        if not all(hasattr(libc, name) for name in ("gnu_get_libc_version", "malloc_trim", "mallopt")):
            return None
    except OSError:
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


def _trim_forever(libc: ctypes.CDLL) -> None:
    while True:
        time.sleep(MALLOC_TRIM_SECONDS)
        try:
            libc.malloc_trim(0)
        except Exception:  # never seen; a thread that dies would only stop trimming
            log.exception("malloc_trim failed")
            return


def run_event_loop(main: Coroutine[Any, Any, Result], kind: Literal["auto", "uvloop", "asyncio"]) -> Result:
    """Run `main` to completion on the event loop the settings ask for (EVENT_LOOP).

    uvloop does the loop's own work (polling, timers, sockets, transports) in C: the worker's
    first contact with thousands of inboxes opens a connection each, and that costs about half
    the CPU on uvloop (bench/bench_fanout.py). "auto" falls back to asyncio where uvloop is not
    installed (it has no Windows build).
    """
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                main.close()
                raise ConfigurationError("EVENT_LOOP=uvloop, but uvloop is not installed") from None
        else:
            return uvloop.run(main)
    return asyncio.run(main)
