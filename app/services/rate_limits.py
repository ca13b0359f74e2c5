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
    # Client API requests per token (or per address without one), as Mastodon: 300 in 5 minutes.
    api_requests: RateLimiter = field(default_factory=lambda: RateLimiter(300, 5 * 60))
    # Sign-ups per address, as Mastodon: 5 in 30 minutes.
    sign_ups_per_address: RateLimiter = field(default_factory=lambda: RateLimiter(5, 30 * 60))
    # Failed log-ins, asked by every way in (web form now, OAuth and the API later).
    logins: LoginRateLimiter = field(default_factory=lambda: LoginRateLimiter())


class LoginRateLimiter:
    """Failed log-ins per client address, and per account name from one address, in a sliding window.

    Never per name alone: a lock on a name that anyone may trigger would let anyone lock anyone
    out (the only administrator included). Counting per address stops one address from trying
    many passwords for one name (per name+address) and from trying a few passwords for many names
    (per address, "password spraying"), while the owner, logging in from an address that has not
    been failing, still gets in. A correct password clears only its own name+address record, so
    an attacker's own account cannot reset the address count.
    """

    def __init__(
        self,
        *,
        per_address: int = 20,
        per_name_and_address: int = 5,
        window: float = 15 * 60,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_address = per_address
        self.per_name_and_address = per_name_and_address
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _keys(self, address: str, name: str) -> tuple[tuple[str, int], tuple[str, int]]:
        return (
            (f"address:{address}", self.per_address),
            (f"name:{name.lower()}@address:{address}", self.per_name_and_address),
        )

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def refusal(self, address: str, name: str) -> RateDecision | None:
        """The limit that bars an attempt from `address` for `name` now, the longer wait first; else None."""
        now = self.clock()
        refusals = []
        for key, limit in self._keys(address, name):
            failures = self._recent(key, now)
            if len(failures) >= limit:
                wait = failures[len(failures) - limit] + self.window - now
                refusals.append(RateDecision(False, limit, 0, max(0.0, wait)))
        return max(refusals, key=lambda refusal: refusal.reset_after, default=None)

    def record_failure(self, address: str, name: str) -> None:
        now = self.clock()
        for key, _limit in self._keys(address, name):
            failures = self._failures.setdefault(key, deque())
            self._failures.move_to_end(key)
            failures.append(now)
        # Bounded memory under a flood of made-up names: forget the least recently failed keys.
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def record_success(self, address: str, name: str) -> None:
        self._failures.pop(self._keys(address, name)[1][0], None)
