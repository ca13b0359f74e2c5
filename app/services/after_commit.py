"""Work that runs once a session's transaction has committed, and never when it rolls back.

Waking the worker for jobs queued in a transaction, and announcing what a transaction wrote
(app.services.events), must wait for the commit: before it, the worker would find nothing and a
listener would be told of a change that may yet be undone. Callers register here while they
write; SQLAlchemy's `after_commit` runs the callbacks, `after_rollback` forgets them.

Everything is kept in the session's own `info`, so nothing outlives the session or is shared
between instances.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_PENDING = "herold.after_commit"


def after_commit(session: AsyncSession, key: Hashable, callback: Callable[[], None]) -> None:
    """Run `callback` after the session's next commit; a second callback under the same `key` in
    the same transaction is dropped (one wake-up per queue, however many jobs were queued)."""
    sync = session.sync_session
    pending: dict[Hashable, Callable[[], None]] | None = sync.info.get(_PENDING)
    if pending is None:
        pending = sync.info[_PENDING] = {}
        event.listen(sync, "after_commit", _run)
        event.listen(sync, "after_rollback", _forget)
    pending.setdefault(key, callback)


def _run(sync: Session) -> None:
    pending: dict[Hashable, Callable[[], None]] = sync.info.get(_PENDING) or {}
    callbacks = list(pending.values())
    pending.clear()
    for callback in callbacks:
        try:
            callback()
        except Exception:
            # The transaction is committed already: a failing listener must not look like a failed write.
            log.exception("an after-commit callback failed")


def _forget(sync: Session, *_: Any) -> None:
    pending = sync.info.get(_PENDING)
    if pending:
        pending.clear()
