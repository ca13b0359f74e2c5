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
            self._prune(now)
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
        now = self._clock()
        self._entries[key] = (now + self._ttl, future)
        self._entries.move_to_end(key)
        self._prune(now)

    def fresh(self, key: Hashable) -> bool:
        """Whether `key` has an answer (or a read under way) that is not stale."""
        found = self._entries.get(key)
        return found is not None and found[0] > self._clock()

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)

    def _prune(self, now: float) -> None:
        """Past the limit the oldest go; and expired entries go as new ones come, not only at the
        limit: the worker's cache (2 s) otherwise held 10,000 answers, most long stale, with the
        rows they were read from. Entries are in the order they were stored, each expiring `ttl`
        after, so the expired ones are at the front."""
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)
        while self._entries:
            expires_at, _future = next(iter(self._entries.values()))
            if expires_at > now:
                break
            self._entries.popitem(last=False)
