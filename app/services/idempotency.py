"""Idempotency-Key, as Mastodon honours it for new posts: a repeated key from the same token
within an hour answers with the post the first request made (an app retrying after a timeout
must not post twice). In-process, owned by one AppContext, bounded; like Mastodon's Redis entry
it is a convenience, not a guarantee across processes."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

KEY_LIFETIME = 60 * 60


class IdempotencyKeys:
    def __init__(self, *, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def earlier(self, key: str) -> int | None:
        """The id recorded for `key` within the last hour, if any."""
        found = self._seen.get(key)
        if found is None:
            return None
        if self.clock() - found[0] > KEY_LIFETIME:
            del self._seen[key]
            return None
        return found[1]

    def record(self, key: str, result_id: int) -> None:
        self._seen[key] = (self.clock(), result_id)
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)


__all__ = ["IdempotencyKeys"]
