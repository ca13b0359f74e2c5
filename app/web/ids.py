"""Ids in URLs and forms: digits within the 63-bit range of the database's BIGINT, or nothing.

A number too large for the column would make PostgreSQL refuse the query; it is answered like
any other unknown id instead.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

MAX_ID = 2**63 - 1

# A path parameter that FastAPI validates (answered 400 when out of range).
EntityId = Annotated[int, Path(ge=1, le=MAX_ID)]


def parse_id(value: str | int | None) -> int | None:
    if isinstance(value, int):
        return value if 1 <= value <= MAX_ID else None
    if not value or len(value) > 19 or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if 1 <= number <= MAX_ID else None
