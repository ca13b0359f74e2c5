"""Work that runs once a session's transaction has committed, and never when it does not.

Waking the worker for jobs queued in a transaction, and announcing what a transaction wrote
(app.services.events), must wait for the commit: before it, the worker would find nothing and a
listener would be told of a change that may yet be undone. Callers register here while they
write; SQLAlchemy's `after_commit` runs the callbacks, and the end of the transaction, however it
ends (commit, rollback, close), forgets whatever was registered in it.

Everything is kept in the session's own `info`, so nothing outlives the session or is shared
between instances.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)

_CALLBACKS = "herold.after_commit"
_VALUES = "herold.transaction_values"

T = TypeVar("T")


def after_commit(session: AsyncSession, key: Hashable, callback: Callable[[], None]) -> None:
    """Run `callback` after the current transaction commits; a second callback under the same
    `key` in the same transaction is dropped (one wake-up per queue, however many jobs)."""
    after_commit_of(session.sync_session, key, callback)


def after_commit_of(sync: Session, key: Hashable, callback: Callable[[], None]) -> None:
    """`after_commit` for the sync Session itself (from SQLAlchemy's session hooks)."""
    _callbacks(sync).setdefault(key, callback)


def transaction_value(session: AsyncSession, key: Hashable, factory: Callable[[], T]) -> T:
    """A value that lives as long as the current transaction (what it is about to announce),
    made by `factory` on first use; the next transaction starts without it."""
    return transaction_value_of(session.sync_session, key, factory)


def transaction_value_of(sync: Session, key: Hashable, factory: Callable[[], T]) -> T:
    """`transaction_value` for the sync Session itself."""
    _callbacks(sync)
    values: dict[Hashable, Any] = sync.info.setdefault(_VALUES, {})
    if key not in values:
        values[key] = factory()
    value: T = values[key]
    return value


def _callbacks(sync: Session) -> dict[Hashable, Callable[[], None]]:
    pending: dict[Hashable, Callable[[], None]] | None = sync.info.get(_CALLBACKS)
    if pending is None:
        pending = sync.info[_CALLBACKS] = {}
        event.listen(sync, "after_commit", _run)
        event.listen(sync, "after_transaction_end", _forget)
    return pending


def _run(sync: Session) -> None:
    pending: dict[Hashable, Callable[[], None]] = sync.info.get(_CALLBACKS) or {}
    callbacks = list(pending.values())
    _clear(sync)
    for callback in callbacks:
        try:
            callback()
        except Exception:
            # The transaction is committed already: a failing listener must not look like a failed write.
            log.exception("an after-commit callback failed")


def _forget(sync: Session, transaction: SessionTransaction) -> None:
    # after_commit has run by now when the transaction committed; a nested one (a SAVEPOINT)
    # ending is not the end of what the outer transaction registered.
    if transaction.parent is None:
        _clear(sync)


def _clear(sync: Session) -> None:
    for key in (_CALLBACKS, _VALUES):
        entries = sync.info.get(key)
        if entries:
            entries.clear()
