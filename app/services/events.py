"""After-commit events: what a transaction wrote that someone may be waiting to hear about.

Every new post, timeline entry, notification, post edit, post deletion and profile change, every
change to an account's content filters or to the announcements, and every other change to what
the public pages show (pins, follows, blocks), is announced here by the
code that writes it, in the writing transaction; the announcements reach the instance's listeners
(`AppContext.events`) once that transaction commits, and never if it rolls back. This is the one
place streaming, Web Push and the public-document cache (app.public_cache) listen.

An instance may run in several processes (`herold serve`'s web processes and its worker, `herold
worker`s, the CLI): a listener subscribes once, on its own process's bus, and hears the events of
every process of the instance. The bus hands what this process commits to its channel
(app.ops.event_channel), which carries it to the others (within a second or two at most) and
hands theirs back through `receive`. A channel that lost contact for a while (a PostgreSQL
connection dropped) cannot know what it missed: it announces `EventsMissed`, after which a
listener that keeps state (a cache) must drop it.

Sessions find their instance's bus in their `info` (the session factory puts it there), so the
writers need no extra argument, and an instance's events never reach another's listeners. While
nobody listens, announcing costs one dictionary lookup.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, get_args

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
    # The post it answers, when it is a reply: that post's public thread page shows it now.
    in_reply_to_id: int | None = None


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


@dataclass(frozen=True)
class AccountChanged:
    """What an account shows others changed: its profile, pictures, pinned posts, suspension or
    deletion."""

    account_id: int


@dataclass(frozen=True)
class FollowsChanged:
    """A follow began or ended between these accounts: their counts and follower lists changed."""

    account_ids: tuple[int, ...]


@dataclass(frozen=True)
class PublicContentChanged:
    """Something that may change any public page changed (a domain block, an account block, the
    instance's name or description): whatever was made from the old state is stale."""


@dataclass(frozen=True)
class FiltersChanged:
    """An account's content filters changed (a filter, its keywords or its posts): its apps,
    told on its `user` streams, fetch them again."""

    account_id: int


@dataclass(frozen=True)
class AnnouncementPublished:
    announcement_id: int


@dataclass(frozen=True)
class AnnouncementWithdrawn:
    announcement_id: int


@dataclass(frozen=True)
class AnnouncementReacted:
    """A reaction `name` on an announcement was added or taken back: its count changed."""

    announcement_id: int
    name: str


@dataclass(frozen=True)
class PostCopiesChanged:
    """Copies of a remote post's attachments or custom emoji were made here, or dropped: whatever
    shows the post (kept API renderings) names the files it knew of until it hears of it."""

    post_id: int


@dataclass(frozen=True)
class CredentialsChanged:
    """Something a bearer token's validity or its viewer is made of changed: a token or an app
    (revoked, deleted), a person (role, login disabled or approved, password), a local account
    (suspended, deleted, its profile), an organisation's team. Announced for every such write by
    app.services.kept_callers, which watches the sessions; whoever keeps resolved tokens drops
    those of `account_ids`, or all of them when it is empty."""

    account_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class EmojiCopiesChanged:
    """Copies of these domains' custom emoji were dropped or replaced (the retention ran out, the
    domain's media came to be rejected, a new picture replaced the old): every post of theirs
    naming one may show a file that is gone, and which posts name which emoji is not kept."""

    domains: tuple[str, ...]


@dataclass(frozen=True)
class EventsMissed:
    """Events of other processes may have been lost (the channel between processes was down):
    whatever a listener derived from earlier events may be stale."""


Event = (
    TimelineEntryAdded
    | PostPublished
    | NotificationAdded
    | PostEdited
    | PostDeleted
    | EventsMissed
    | AccountChanged
    | FollowsChanged
    | PublicContentChanged
    | FiltersChanged
    | AnnouncementPublished
    | AnnouncementWithdrawn
    | AnnouncementReacted
    | PostCopiesChanged
    | CredentialsChanged
    | EmojiCopiesChanged
)
Listener = Callable[[Event], None]
# Every kind of event by its name, for carrying events between processes (app.ops.event_channel):
# a new kind needs no more than its place in `Event`.
EVENT_TYPES: dict[str, type[Event]] = {kind.__name__: kind for kind in get_args(Event)}


class EventRelay(Protocol):
    """Carries what this process commits to the instance's other processes (app.ops.event_channel)."""

    @property
    def others_may_listen(self) -> bool: ...

    def publish(self, events: Sequence[Event]) -> None: ...


class EventBus:
    """One instance's listeners in this process. A listener is called once per event, in commit
    order (per process), right after the commit or the event's arrival from another process, on
    the event loop: it must return quickly (put the event on a queue of its own)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._relay: EventRelay | None = None

    @property
    def listening(self) -> bool:
        """Whether an announcement would reach anyone: a listener here, or other processes."""
        return bool(self._listeners) or (self._relay is not None and self._relay.others_may_listen)

    def relay_to(self, relay: EventRelay | None) -> None:
        """From now on, hand what this process commits to `relay` too (None: stop)."""
        self._relay = relay

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
        """What this process committed: to the listeners here, and through the relay to the others."""
        if self._relay is not None:
            try:
                self._relay.publish(events)
            except Exception:
                log.exception("handing events to the other processes failed")
        self.receive(events)

    def receive(self, events: Sequence[Event]) -> None:
        """Events for the listeners of this process only (what other processes committed)."""
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
