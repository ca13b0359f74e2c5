"""Each reader's content filters, compiled and kept in the process: every page of statuses in a
filtered context applies them, and reading them cost a statement per page.

Dropped by `FiltersChanged` (every write of an account's filters announces it, in any process:
app.services.content_filters), everything by `EventsMissed`; an entry ends with the first expiry
among its filters, and lives at most `ttl` seconds. A reader takes what is kept only after taking
in the other processes' events (the caller says so: `fresh`).
"""

from __future__ import annotations

from datetime import datetime

from app.models.base import utcnow
from app.services import events
from app.services.kept_values import KeptValues

DEFAULT_TTL = 60.0
DEFAULT_LIMIT = 10_000


class KeptFilters(KeptValues[tuple[int, str], datetime | None]):
    """Compiled filters by (account id, context), for one instance in this process; each tagged
    with the first moment one of its filters expires (then the set changes), or None."""

    def __init__(self, *, ttl: float = DEFAULT_TTL, limit: int = DEFAULT_LIMIT) -> None:
        super().__init__(ttl=ttl, limit=limit)

    def still_valid(self, tag: datetime | None) -> bool:
        return tag is None or tag > utcnow()

    def on_event(self, item: events.Event) -> None:
        match item:
            case events.FiltersChanged(account_id=account_id):
                self.forget(lambda key, _ends: key[0] == account_id)
            case events.EventsMissed():
                self.clear()
            case _:
                pass


__all__ = ["KeptFilters"]
