"""What a process keeps of answers it may not serve stale: values by key, each for at most `ttl`
seconds, the least recently kept out first beyond `limit`, and dropped by events.

Shared by the token resolutions (app.services.kept_callers) and the readers' filters
(app.services.kept_filters). A reader takes a `ticket` before it reads what it is about to keep;
every drop moves the generation on, so a value read before a change it may predate is not kept.
Each entry carries a `tag` its owner drops by (the accounts a token speaks for, when filters end).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Tag = TypeVar("Tag")


@dataclass(frozen=True)
class _Entry(Generic[Tag]):
    expires_at: float
    tag: Tag
    value: Any


class KeptValues(Generic[Key, Tag]):
    def __init__(self, *, ttl: float, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._limit = limit
        self._clock = clock
        self._entries: OrderedDict[Key, _Entry[Tag]] = OrderedDict()
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def still_valid(self, tag: Tag) -> bool:
        """Whether an entry with `tag` may still be served (besides its ttl); for subclasses."""
        return True

    def get(self, key: Key) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock() or not self.still_valid(entry.tag):
            del self._entries[key]
            return None
        return entry.value

    def ticket(self) -> int:
        """Taken before the rows a value is made from are read; `put` needs it."""
        return self._generation

    def put(self, key: Key, value: Any, tag: Tag, ticket: int) -> None:
        if ticket != self._generation:
            return
        self._entries[key] = _Entry(self._clock() + self._ttl, tag, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    def forget(self, dropped: Callable[[Key, Tag], bool]) -> None:
        self._generation += 1
        for key in [key for key, entry in self._entries.items() if dropped(key, entry.tag)]:
            del self._entries[key]


__all__ = ["KeptValues"]
