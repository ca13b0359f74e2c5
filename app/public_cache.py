"""Ready answers for anonymous readers: the public documents other servers and visitors fetch most.

When one of the organisation's posts goes viral, thousands of servers fetch the same Note, actor
and WebFinger document within a minute, and visitors open the same profile and post pages. Each
of those answers is the same bytes for every reader who is not logged in and does not sign, so
each process keeps them (body and headers) in memory, up to PUBLIC_CACHE_MB, and serves them
without touching the database (app.cache_middleware decides who may be served from here).

What may be kept is decided by the route that made the answer: it calls `cache_publicly` with the
tags the answer depends on (the post, its author, the counts...), and only when it answered as it
would answer anyone. Invalidation comes from the after-commit events (app.services.events): an
edit or a delete drops every answer tagged with the post before the writer's response is sent, so
the next GET is never stale; the subscriber is the instance's event bus, so events carried over
from other processes invalidate here too. A time limit catches what events do not carry (like
and boost counts on pages, a remote replier's new avatar).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from starlette.requests import Request

from app.services import events

Tag = Hashable
# Answers that depend on the whole site (NodeInfo, the front page, About, hashtag pages): dropped
# on any post or account change, which is rare next to reads.
SITE: Tag = ("site",)
# How long a reverse proxy may keep an anonymous answer (Cache-Control: public, max-age=...). Short:
# a proxy is not told of deletions, so this is the longest a deleted post may linger there.
PUBLIC_MAX_AGE = 60
# In this process: what events invalidate lives up to an hour; pages that also show counts (likes,
# followers) or other servers' accounts, which no event here announces, up to half a minute.
DOCUMENT_SECONDS = 3600.0
PAGE_SECONDS = 30.0
_STATE_KEY = "herold_public_cache_tags"
_STATE_SECONDS_KEY = "herold_public_cache_seconds"
# Bytes an entry costs besides its body and headers (the key, the dictionaries, the tag sets).
_ENTRY_OVERHEAD = 400
# Past this many remembered invalidations, forget them all and refuse answers begun before.
_MAX_REMEMBERED_TAGS = 50_000


def post_tag(post_id: int) -> Tag:
    return ("post", post_id)


def account_tag(account_id: int) -> Tag:
    """The account's own documents: actor, WebFinger, its lists of posts, and pages naming it."""
    return ("account", account_id)


def follows_tag(account_id: int) -> Tag:
    """What shows the account's follower and following counts or lists."""
    return ("follows", account_id)


def cache_publicly(request: Request, tags: Iterable[Tag], *, seconds: float = DOCUMENT_SECONDS) -> None:
    """Let the answer to this request be kept for anonymous readers, until an event drops one of
    `tags` or `seconds` pass. Call it only where the answer does not depend on who asks."""
    request.state.__setattr__(_STATE_KEY, frozenset(tags))
    request.state.__setattr__(_STATE_SECONDS_KEY, seconds)


def tags_of(scope_state: dict[str, object]) -> tuple[frozenset[Tag], float] | None:
    tags = scope_state.get(_STATE_KEY)
    if not isinstance(tags, frozenset):
        return None
    seconds = scope_state.get(_STATE_SECONDS_KEY)
    return tags, float(seconds) if isinstance(seconds, (int, float)) else DOCUMENT_SECONDS


def etag_of(body: bytes) -> bytes:
    return b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'


@dataclass
class CachedAnswer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes
    expires_at: float
    tags: frozenset[Tag]
    size: int


@dataclass
class CacheCounts:
    hits: int = 0
    misses: int = 0
    stored: int = 0
    refused_stale: int = 0
    dropped: int = 0


@dataclass
class PublicCache:
    """One process's ready answers, least recently used dropped first beyond `limit_bytes`."""

    limit_bytes: int
    clock: Callable[[], float] = time.monotonic
    counts: CacheCounts = field(default_factory=CacheCounts)

    def __post_init__(self) -> None:
        self._entries: OrderedDict[Hashable, CachedAnswer] = OrderedDict()
        self._by_tag: dict[Tag, set[Hashable]] = {}
        self._size = 0
        # Invalidations are numbered. An answer begun (`ticket`) before one of its tags was
        # invalidated may hold what the invalidation removed, so it is not kept.
        self._generation = 0
        self._floor = 0
        self._invalidated_at: dict[Tag, int] = {}

    @property
    def enabled(self) -> bool:
        return self.limit_bytes > 0

    @property
    def size_bytes(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> CachedAnswer | None:
        entry = self._entries.get(key)
        if entry is None:
            self.counts.misses += 1
            return None
        if entry.expires_at <= self.clock():
            self._remove(key)
            self.counts.misses += 1
            return None
        self._entries.move_to_end(key)
        self.counts.hits += 1
        return entry

    def ticket(self) -> int:
        """Taken when an answer starts being made; `put` needs it."""
        return self._generation

    def put(
        self,
        key: Hashable,
        ticket: int,
        *,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        etag: bytes,
        tags: frozenset[Tag],
        seconds: float,
    ) -> bool:
        """Keep an answer; refused (False) when one of its tags was invalidated since `ticket`."""
        if ticket < self._floor or any(self._invalidated_at.get(tag, -1) > ticket for tag in tags):
            self.counts.refused_stale += 1
            return False
        size = len(body) + sum(len(name) + len(value) for name, value in headers) + _ENTRY_OVERHEAD
        if size > self.limit_bytes // 8:
            return False
        if key in self._entries:
            self._remove(key)
        self._entries[key] = CachedAnswer(status, headers, body, etag, self.clock() + seconds, tags, size)
        self._size += size
        for tag in tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while self._size > self.limit_bytes and self._entries:
            self._remove(next(iter(self._entries)))
        self.counts.stored += 1
        return True

    def invalidate(self, tags: Iterable[Tag]) -> None:
        self._generation += 1
        if len(self._invalidated_at) > _MAX_REMEMBERED_TAGS:
            self._invalidated_at.clear()
            self._floor = self._generation
        for tag in tags:
            self._invalidated_at[tag] = self._generation
            for key in self._by_tag.pop(tag, ()):
                self._remove(key)

    def clear(self) -> None:
        self._generation += 1
        self._floor = self._generation
        self._invalidated_at.clear()
        self._entries.clear()
        self._by_tag.clear()
        self._size = 0

    def _remove(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._size -= entry.size
        self.counts.dropped += 1
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]

    def on_event(self, event: events.Event) -> None:
        """The event bus listener: what each committed change makes stale."""
        match event:
            case (
                events.PostEdited(post_id=post_id, account_id=account_id)
                | events.PostDeleted(post_id=post_id, account_id=account_id)
            ):
                self.invalidate((post_tag(post_id), account_tag(account_id), SITE))
            case events.PostPublished(
                post_id=post_id, account_id=account_id, local=local, in_reply_to_id=parent
            ):
                tags = [post_tag(post_id), account_tag(account_id)]
                if local:
                    # NodeInfo counts local posts; hashtag pages of other servers' posts expire.
                    tags.append(SITE)
                if parent is not None:
                    tags.append(post_tag(parent))
                self.invalidate(tags)
            case events.AccountChanged(account_id=account_id):
                self.invalidate((account_tag(account_id), follows_tag(account_id)))
            case events.FollowsChanged(account_ids=account_ids):
                self.invalidate([follows_tag(account_id) for account_id in account_ids])
            case events.PostCopiesChanged(post_id=post_id):
                self.invalidate((post_tag(post_id),))
            case events.PublicContentChanged() | events.EventsMissed() | events.EmojiCopiesChanged():
                # EventsMissed: another process's changes may not have reached us.
                self.clear()
            case _:
                pass
