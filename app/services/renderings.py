"""What posts and accounts look like to everyone, rendered once and kept: apps poll the same
statuses all day.

A home timeline of 40 statuses cost a dozen queries and most of its CPU in loading each post's
media, mentions, hashtags and author through the ORM and building the same entities again for
every reader and every poll. Here each process keeps, per post, the part of its rendering that
does not depend on who reads it (for the client API: a Status entity without the account, the
counts and the reader's flags) with what the content filters read (its media), and per account
its rendering (the API's Account entity).

What it must never do is show what a reader may not see, or show an old version:
- it decides nothing about which posts a page holds: the lists still select them with the
  visibility rule (app.services.visibility), and only then are their renderings looked up here;
- a post's entry is valid only for the post's version it was made from (its `edited_at`, which
  every edit sets, here or by its server): the page's own row tells the version, so an edit made by
  another process is never shown stale, whenever its event arrives;
- the after-commit events (app.services.events, carried between processes by
  app.ops.event_channel) drop an edited or deleted post, and an account whose profile, follows or
  posts changed (its counts), at once; everything when events may have been missed. A reader
  from memory first takes in what other processes sent (`EventChannel.catch_up`);
- what no event announces and no version tells (a mentioned account's new address, a remote
  account's counts between two fetches of its actor) lives at most `ttl` seconds.
What changes with every like and boost is not kept: a post's counts come with the page's rows,
and the reader's own flags are read per request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from app.services import events

# Entries kept per kind of subject: a hundred readers' pages of 40 (a few KB each). The soak
# (10 minutes of federation traffic and a timeline read a second) grew each web process by the
# 20,000 entries allowed before, most of them long expired.
DEFAULT_LIMIT = 5_000
DEFAULT_TTL = 60.0
# Past this many remembered drops, forget them all and refuse renderings begun before (a rendering
# takes milliseconds; at 400 drops a second, 5,000 is over ten seconds of them).
_MAX_REMEMBERED_DROPS = 5_000


@dataclass(frozen=True)
class _Entry:
    version: Hashable
    expires_at: float
    value: Any


class RenderingStore:
    """Renderings of one kind of subject (posts, or accounts) by (rendering, subject id), least
    recently used dropped first."""

    def __init__(self, *, limit: int, ttl: float, clock: Callable[[], float]) -> None:
        self._limit = limit
        self._ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[tuple[str, int], _Entry] = OrderedDict()
        self._by_subject: dict[int, set[str]] = {}
        # Drops are numbered: a rendering begun (`ticket`) before its subject was dropped may have
        # been made from what the drop was about, so it is not kept.
        self._generation = 0
        self._floor = 0
        self._dropped_at: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, rendering: str, subject_id: int, version: Hashable = None) -> Any | None:
        """The rendering of `subject_id` made from `version`, or None (never made, another
        version, expired)."""
        key = (rendering, subject_id)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.version != version or entry.expires_at <= self._clock():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    def ticket(self) -> int:
        """Taken before the rows a rendering is made from are read; `put` needs it."""
        return self._generation

    def put(self, rendering: str, subject_id: int, value: Any, ticket: int, version: Hashable = None) -> None:
        """Keep a rendering, unless its subject was dropped since `ticket` (then it may be stale)."""
        if ticket < self._floor or self._dropped_at.get(subject_id, -1) > ticket:
            return
        key = (rendering, subject_id)
        now = self._clock()
        self._entries[key] = _Entry(version, now + self._ttl, value)
        self._entries.move_to_end(key)
        self._by_subject.setdefault(subject_id, set()).add(rendering)
        while len(self._entries) > self._limit:
            self._remove(next(iter(self._entries)))
        # Expired entries leave as new ones come, not only when the limit pushes them out: the
        # least recently used come first, and they are the first to expire (an entry expires a
        # fixed time after it was made), so a store holds about a minute's worth.
        while self._entries:
            oldest = next(iter(self._entries))
            if self._entries[oldest].expires_at > now:
                break
            self._remove(oldest)

    def forget(self, subject_id: int) -> None:
        self._generation += 1
        if len(self._dropped_at) > _MAX_REMEMBERED_DROPS:
            self._dropped_at.clear()
            self._floor = self._generation
        self._dropped_at[subject_id] = self._generation
        for rendering in self._by_subject.pop(subject_id, set()):
            self._entries.pop((rendering, subject_id), None)

    def clear(self) -> None:
        self._generation += 1
        self._floor = self._generation
        self._dropped_at.clear()
        self._entries.clear()
        self._by_subject.clear()

    def _remove(self, key: tuple[str, int]) -> None:
        self._entries.pop(key, None)
        renderings = self._by_subject.get(key[1])
        if renderings is not None:
            renderings.discard(key[0])
            if not renderings:
                del self._by_subject[key[1]]


class Renderings:
    """One instance's kept renderings in this process, and the event listener that drops them."""

    def __init__(
        self,
        *,
        limit: int = DEFAULT_LIMIT,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The clock is injectable so tests can step time instead of sleeping past a real expiry.
        self.posts = RenderingStore(limit=limit, ttl=ttl, clock=clock)
        self.accounts = RenderingStore(limit=limit, ttl=ttl, clock=clock)

    def on_event(self, event: events.Event) -> None:
        """The event bus listener (this process's commits and the other processes' alike)."""
        match event:
            case (
                events.PostEdited(post_id=post_id, account_id=account_id)
                | events.PostDeleted(post_id=post_id, account_id=account_id)
            ):
                self.posts.forget(post_id)
                # The author's count of posts (and for a deletion, its last post's date).
                self.accounts.forget(account_id)
            case events.PostCopiesChanged(post_id=post_id):
                self.posts.forget(post_id)
            case events.EmojiCopiesChanged():
                # Rare (the daily cleanup, a domain block): which kept posts name the emoji is not known.
                self.posts.clear()
            case events.PostPublished(account_id=account_id) | events.AccountChanged(account_id=account_id):
                self.accounts.forget(account_id)
            case events.FollowsChanged(account_ids=account_ids):
                for account_id in account_ids:
                    self.accounts.forget(account_id)
            case events.PublicContentChanged():
                self.accounts.clear()
            case events.EventsMissed():
                self.posts.clear()
                self.accounts.clear()
            case _:
                pass


__all__ = ["RenderingStore", "Renderings"]
