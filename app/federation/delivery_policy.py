"""What an inbox's answer means for a delivery job, and when a failed one is tried again.

- 2xx: done.
- 4xx other than 401, 408 and 429: failed for good (recorded, never retried). 410 also marks the
  account behind a personal inbox gone, so it is no longer delivered to.
- 429 and 503 honour Retry-After; every other failure (network errors, timeouts, 5xx, 401, 408)
  is retried with exponential backoff and jitter: 16 attempts over about 2 to 2.6 days, as
  Mastodon's Sidekiq schedule does (15 s + n⁴ after the n-th failure).
- Redirects are not followed: the signature covers the request target, so a redirected POST could
  only be refused; an inbox that redirects has failed for good.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import Enum

MAX_ATTEMPTS = 16
# Sidekiq's schedule stretched by up to this much, so jobs that failed together do not retry together.
RETRY_JITTER = 0.25
RETRY_AFTER_MIN = timedelta(seconds=1)
RETRY_AFTER_MAX = timedelta(days=1)


def retry_delay(failures: int) -> timedelta:
    """How long to wait after the `failures`-th failed attempt (1 → ~16 s … 15 → ~14 h)."""
    base = 15 + failures**4
    return timedelta(seconds=base * (1 + random.uniform(0, RETRY_JITTER)))


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as seconds or as an HTTP date, held within sane bounds; None if absent or unusable."""
    if not value:
        return None
    value = value.strip()
    delay: timedelta | None = None
    if value.isdigit():
        delay = timedelta(seconds=int(value))
    else:
        try:
            delay = parsedate_to_datetime(value) - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(RETRY_AFTER_MIN, min(RETRY_AFTER_MAX, delay))


class Verdict(Enum):
    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"
    # Not attempted now (breaker open, host busy): back in the queue without counting an attempt.
    POSTPONE = "postpone"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    status: int | None = None
    error: str | None = None
    retry_after: timedelta | None = None
    # The host did not answer usefully (network error, timeout, 5xx...): feeds the breaker and
    # the domain's failure days. A host that answers, even with a refusal, is up.
    host_failed: bool = False
    # 410 Gone from the inbox.
    gone: bool = False
    # How long to postpone a POSTPONE.
    delay: float = 0.0
    # An attempt counted against the job's 16 (no request may have gone out: a key that cannot sign).
    attempted: bool = True

    @property
    def contacted(self) -> bool:
        """The host was asked (it answered, or failed to): only then do its breaker and its
        failure days learn from the outcome. Our own failures (signing, the address guard) are not
        the host's."""
        return self.status is not None or self.host_failed


def classify(status: int, retry_after: str | None, now: datetime) -> Outcome:
    """What an HTTP status from an inbox means for the job."""
    if 200 <= status < 300:
        return Outcome(Verdict.DONE, status)
    if 300 <= status < 400:
        return Outcome(Verdict.FAILED, status, f"the inbox redirected ({status})")
    if status in (429, 503):
        return Outcome(
            Verdict.RETRY,
            status,
            f"the inbox answered {status}",
            retry_after=parse_retry_after(retry_after, now),
            host_failed=True,
        )
    if status in (401, 408) or status >= 500:
        return Outcome(Verdict.RETRY, status, f"the inbox answered {status}", host_failed=True)
    if status == 410:
        return Outcome(Verdict.FAILED, status, "the inbox is gone (410)", gone=True)
    return Outcome(Verdict.FAILED, status, f"the inbox refused the activity ({status})")
