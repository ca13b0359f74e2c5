"""What a service answers when it will not do what was asked, one class per kind of answer.

Each surface maps them once: the web and the client API to 404, 403, 400/422 and 429 (with the
rate-limit headers), the command line to one line on stderr and exit status 1. The message is
meant for the person asking. A post or an account the viewer may not see is NotFound, never
Forbidden: a refusal must not tell that it exists.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A request a service refuses; `str(error)` explains it to the person asking."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    """It does not exist, or the viewer may not see it (the two are not told apart)."""


class Forbidden(ServiceError):
    """The viewer sees it but may not do this: act as that account, an administrator's task, a scope."""


class Invalid(ServiceError, ValueError):
    """What was sent cannot be carried out as it stands: too long, a wrong value, a limit reached."""


class RateLimited(ServiceError):
    """Too many of these too quickly; `headers` are the X-RateLimit-* (and Retry-After) to send."""

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = dict(headers or {})


__all__ = ["Forbidden", "Invalid", "NotFound", "RateLimited", "ServiceError"]
