"""After-commit events: what a transaction wrote that someone may be waiting to hear about.

Every new post, timeline entry, notification, post edit and post deletion is announced here by
the code that writes it, in the writing transaction; the announcements reach the instance's listeners
(`AppContext.events`) once that transaction commits, and never if it rolls back. This is the one
place streaming and Web Push listen: in this process for now; carrying events to other
processes (a separate worker) will subscribe here and forward them.

Sessions find their instance's bus in their `info` (the session factory puts it there), so the
writers need no extra argument, and an instance's events never reach another's listeners. While
nobody listens, announcing costs one dictionary lookup.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.models import Post
from app.services.after_commit import after_commit, transaction_value

log = logging.getLogger(__name__)

SESSION_INFO_KEY = "herold.events"


@dataclass(frozen=True)
class TimelineEntryAdded:
    """A post entered a local account's home timeline."""

    account_id: int
    post_id: int


@dataclass(frozen=True)
class PostPublished:
    """A post or a boost was stored: written here (`local`), or delivered to us by its server.

    Posts fetched only to complete a thread or a boost are not announced: nobody sent them to us.
    """

    post_id: int
    account_id: int
    local: bool


@dataclass(frozen=True)
class NotificationAdded:
    account_id: int
    from_account_id: int
    kind: str
    post_id: int | None = None
    notification_id: int | None = None


@dataclass(frozen=True)
class PostEdited:
    post_id: int
    account_id: int


@dataclass(frozen=True)
class PostDeleted:
    """A post or a boost is gone (and with a post, every boost of it): lists showing it drop it."""

    post_id: int
    account_id: int


Event = TimelineEntryAdded | PostPublished | NotificationAdded | PostEdited | PostDeleted
Listener = Callable[[Event], None]


class EventBus:
    """One instance's listeners. A listener is called once per event, in commit order, right after
    the commit, on the event loop: it must return quickly (put the event on a queue of its own)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    @property
    def listening(self) -> bool:
        return bool(self._listeners)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Start calling `listener`; returns the function that stops it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def session_info(self) -> dict[str, Any]:
        """What the session factory puts in every session's `info`, so writers find this bus."""
        return {SESSION_INFO_KEY: self}

    def deliver(self, events: Sequence[Event]) -> None:
        for listener in list(self._listeners):
            for item in events:
                try:
                    listener(item)
                except Exception:
                    log.exception("an event listener failed on %r", item)


def announce(session: AsyncSession, events: Iterable[Event]) -> None:
    """Announce `events` once the session's current transaction commits."""
    bus: EventBus | None = session.sync_session.info.get(SESSION_INFO_KEY)
    if bus is None or not bus.listening:
        return
    pending: list[Event] = transaction_value(session, SESSION_INFO_KEY, list)
    if not pending:
        after_commit(session, SESSION_INFO_KEY, lambda: bus.deliver(pending))
    pending.extend(events)


async def announce_deleted_posts(session: AsyncSession, *conditions: ColumnElement[bool]) -> None:
    """Announce the deletion of every post meeting `conditions` (an account's, a domain's), read
    before the caller deletes them in bulk; nothing is read while nobody listens."""
    if not listening(session):
        return
    rows = await session.execute(select(col(Post.id), col(Post.account_id)).where(*conditions))
    announce(session, [PostDeleted(post_id, account_id) for post_id, account_id in rows.all()])


def listening(session: AsyncSession) -> bool:
    """Whether anyone would hear an announcement: writers of many rows skip building events otherwise."""
    bus: EventBus | None = session.sync_session.info.get(SESSION_INFO_KEY)
    return bus is not None and bus.listening
