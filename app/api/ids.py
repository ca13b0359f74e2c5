"""Ids in paths: strings of digits; anything else is simply not found, as on Mastodon."""

from __future__ import annotations

from app.http_errors import NotFound

MAX_ID = 2**63 - 1


def is_number(value: str) -> bool:
    """ASCII digits only: str.isdigit() also takes characters such as '²' that int() refuses."""
    return value.isascii() and value.isdigit()


def path_id(value: str) -> int:
    if not is_number(value) or int(value) > MAX_ID:
        raise NotFound("Record not found")
    return int(value)


__all__ = ["MAX_ID", "is_number", "path_id"]
