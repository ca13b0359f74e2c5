"""A small read-through cache for values that may be a few seconds old, with one read in flight
per key however many callers miss it at the same moment."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class ReadCache:
    """Answers to repeated reads (who follows an author, who hides them...) kept for a few seconds.

    Owned by one processor or one instance, never shared between instances; what it trades is that
    a change made elsewhere in the last `ttl` seconds may not be seen yet, as with any fan-out queue.
    Concurrent misses for one key share a single read.
    """

    def __init__(
        self, ttl: float = 2.0, limit: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._limit = limit
        # Injectable so tests can step time instead of sleeping past a real expiry.
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, asyncio.Future[Any]]] = OrderedDict()

    async def get(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        now = self._clock()
        found = self._entries.get(key)
        if found is None or found[0] <= now or (found[1].done() and found[1].exception() is not None):
            future: asyncio.Future[Any] = asyncio.ensure_future(load())
            self._entries[key] = (now + self._ttl, future)
            self._entries.move_to_end(key)
            while len(self._entries) > self._limit:
                self._entries.popitem(last=False)
        else:
            future = found[1]
        if future.done():
            done: T = future.result()
            return done
        # Shielded: one waiter cancelled must not cancel the read the others are waiting for.
        value: T = await asyncio.shield(future)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        """Remember `value` for `key` as if a read had just returned it (read ahead for many keys
        in one query, answered here one key at a time)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(value)
        self._entries[key] = (self._clock() + self._ttl, future)
        self._entries.move_to_end(key)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)

    def fresh(self, key: Hashable) -> bool:
        """Whether `key` has an answer (or a read under way) that is not stale."""
        found = self._entries.get(key)
        return found is not None and found[0] > self._clock()

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)
