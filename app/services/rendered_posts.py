"""What a post looks like to everyone, rendered once and kept: apps poll the same statuses all day.

A home timeline of 40 statuses cost a dozen queries and most of its CPU in loading each post's
media, mentions and hashtags through the ORM and building the same entity again for every reader
and every poll. Here each process keeps, per post, the part of its rendering that does not depend
on who reads it (for the client API: a Status entity without the account, the counts and the
reader's flags), with what the content filters read (its media).

What it must never do is show what a reader may not see, or show an old version:
- it decides nothing about which posts a page holds: the lists still select them with the
  visibility rule (app.services.visibility), and only then are their renderings looked up here;
- an entry is valid only for the post's version it was made from (its `edited_at`, which every
  edit sets, here or by its server): the page's own row tells the version, so an edit made by
  another process is never shown stale, whenever its event arrives;
- the after-commit events (app.services.events, carried between processes by
  app.ops.event_channel) drop an edited or deleted post at once, and everything when events may
  have been missed;
- what no event announces and no version tells (a mentioned account's new address, a remote
  attachment's copy made here) lives at most `ttl` seconds.
What changes often and cheaply is not kept: counts, the author's account (read fresh with the
page) and the reader's own flags are added per request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from app.services import events

# Entries a process keeps: a few hundred readers' timelines' worth of posts (a few KB each).
DEFAULT_LIMIT = 20_000
DEFAULT_TTL = 60.0


@dataclass(frozen=True)
class _Entry:
    version: Hashable
    expires_at: float
    value: Any


class RenderedPosts:
    """One process's renderings by (kind of rendering, post id), least recently used dropped first."""

    def __init__(
        self, *, limit: int = DEFAULT_LIMIT, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._ttl = ttl
        # Injectable so tests can step time instead of sleeping past a real expiry.
        self._clock = clock
        self._entries: OrderedDict[tuple[str, int], _Entry] = OrderedDict()
        self._by_post: dict[int, set[str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, kind: str, post_id: int, version: Hashable) -> Any | None:
        """The rendering of `post_id` made from `version`, or None (never made, another version, expired)."""
        key = (kind, post_id)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.version != version or entry.expires_at <= self._clock():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    def put(self, kind: str, post_id: int, version: Hashable, value: Any) -> None:
        key = (kind, post_id)
        self._entries[key] = _Entry(version, self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        self._by_post.setdefault(post_id, set()).add(kind)
        while len(self._entries) > self._limit:
            self._remove(next(iter(self._entries)))

    def forget(self, post_id: int) -> None:
        for kind in self._by_post.pop(post_id, set()):
            self._entries.pop((kind, post_id), None)

    def clear(self) -> None:
        self._entries.clear()
        self._by_post.clear()

    def _remove(self, key: tuple[str, int]) -> None:
        self._entries.pop(key, None)
        kinds = self._by_post.get(key[1])
        if kinds is not None:
            kinds.discard(key[0])
            if not kinds:
                del self._by_post[key[1]]

    def on_event(self, event: events.Event) -> None:
        """The event bus listener (this process's commits and the other processes' alike)."""
        match event:
            case events.PostEdited(post_id=post_id) | events.PostDeleted(post_id=post_id):
                self.forget(post_id)
            case events.EventsMissed():
                self.clear()
            case _:
                pass


__all__ = ["RenderedPosts"]
