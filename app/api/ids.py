"""Ids in paths: strings of digits; anything else is simply not found, as on Mastodon."""

from __future__ import annotations

from app.http_errors import NotFound

MAX_ID = 2**63 - 1


def path_id(value: str) -> int:
    if not value.isdigit() or int(value) > MAX_ID:
        raise NotFound("Record not found")
    return int(value)


__all__ = ["MAX_ID", "path_id"]
