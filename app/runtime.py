"""Process-wide settings of the long-running commands (`herold serve`, `herold worker`)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

from app.config import ConfigurationError

Result = TypeVar("Result")

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
