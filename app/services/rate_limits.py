"""Sliding-window rate limits with the numbers clients read from `X-RateLimit-*` headers.

In-process state owned by one app instance (AppContext.rate_limits), never module level: each
process limits on its own, which is enough to stop one remote host or one account flooding.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until the oldest counted hit leaves the window.
    reset_after: float

    def headers(self, now: float | None = None) -> dict[str, str]:
        reset = datetime.fromtimestamp((now if now is not None else time.time()) + self.reset_after, UTC)
        values = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            # Mastodon sends an ISO 8601 time; clients parse it as such.
            "X-RateLimit-Reset": reset.isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        if not self.allowed:
            values["Retry-After"] = str(max(1, math.ceil(self.reset_after)))
        return values


class RateLimiter:
    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def hit(self, key: str) -> RateDecision:
        """Count one request for `key` if there is room; say whether it may go ahead."""
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        self._hits.move_to_end(key)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        allowed = len(hits) < self.limit
        if allowed:
            hits.append(now)
        reset_after = (hits[0] + self.window - now) if hits else self.window
        # Bounded memory under a flood of made-up keys: forget the least recently seen.
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)
        return RateDecision(allowed, self.limit, max(0, self.limit - len(hits)), max(0.0, reset_after))


@dataclass
class RateLimits:
    """The limits of one instance. Mastodon's numbers: 300 posts in 3 hours per account."""

    inbox_per_host: RateLimiter = field(default_factory=lambda: RateLimiter(3000, 5 * 60))
    # Fetches of keys we do not know yet, per key server: the one thing an unverified request
    # makes us do (a GET to the keyId), so a flood of made-up keyIds can neither cost us without
    # bound nor turn us against a third party. A peer whose keys we know is never held by it.
    key_fetches_per_host: RateLimiter = field(default_factory=lambda: RateLimiter(300, 5 * 60))
    posts_per_account: RateLimiter = field(default_factory=lambda: RateLimiter(300, 3 * 60 * 60))
