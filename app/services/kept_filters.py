"""Each reader's content filters, compiled and kept in the process: every page of statuses in a
filtered context applies them, and reading them cost a statement per page.

Dropped by `FiltersChanged` (every write of an account's filters announces it, in any process:
app.services.content_filters), everything by `EventsMissed`; an entry ends with the first expiry
among its filters, and lives at most `ttl` seconds. A reader takes what is kept only after taking
in the other processes' events (the caller says so: `fresh`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.models.base import utcnow
from app.services import events

DEFAULT_TTL = 60.0
DEFAULT_LIMIT = 10_000


@dataclass(frozen=True)
class _Entry:
    expires_at: float
    # The first moment one of its filters expires (then the set changes), or None.
    ends_at: datetime | None
    value: Any


class KeptFilters:
    """Compiled filters by (account id, context), for one instance in this process."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        limit: int = DEFAULT_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._limit = limit
        self._clock = clock
        self._entries: OrderedDict[tuple[int, str], _Entry] = OrderedDict()
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, account_id: int, context: str) -> Any | None:
        key = (account_id, context)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock() or (entry.ends_at is not None and entry.ends_at <= utcnow()):
            del self._entries[key]
            return None
        return entry.value

    def ticket(self) -> int:
        """Taken before the filters are read; `put` needs it."""
        return self._generation

    def put(self, account_id: int, context: str, value: Any, ends_at: datetime | None, ticket: int) -> None:
        if ticket != self._generation:
            return
        key = (account_id, context)
        self._entries[key] = _Entry(self._clock() + self._ttl, ends_at, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)

    def on_event(self, item: events.Event) -> None:
        match item:
            case events.FiltersChanged(account_id=account_id):
                self._generation += 1
                for key in [key for key in self._entries if key[0] == account_id]:
                    del self._entries[key]
            case events.EventsMissed():
                self._generation += 1
                self._entries.clear()
            case _:
                pass


__all__ = ["KeptFilters"]
