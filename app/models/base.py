"""Column types and id generation shared by every table."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import JSON, BigInteger, Column, DateTime
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite would otherwise hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> int:
    """Time-ordered 63-bit ids: milliseconds since the epoch, then 16 random bits.

    Sorting by id sorts by creation time (timelines paginate on it), ids made by several
    processes on one database do not collide in practice, and they are not guessable counters.
    """
    return (int(time.time() * 1000) << 16) | secrets.randbits(16)


def new_ids(count: int) -> list[int]:
    """`count` distinct ids for one bulk insert.

    With 16 random bits per millisecond, a few hundred ids drawn in the same millisecond are
    likely to contain a repeat (the birthday bound), which a multi-row INSERT of a fan-out's
    thousands of rows would hit; drawing until the batch is distinct rules that out.
    """
    ids: set[int] = set()
    while len(ids) < count:
        ids.add(new_id())
    return sorted(ids)


def id_field() -> Any:
    return Field(default_factory=new_id, sa_type=BigInteger, primary_key=True)


OnDelete = Literal["CASCADE", "SET NULL", "RESTRICT"]


def foreign_id(
    target: str, *, nullable: bool = False, index: bool = True, ondelete: OnDelete = "CASCADE"
) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_type=BigInteger,
        foreign_key=target,
        nullable=nullable,
        index=index,
        ondelete=ondelete,
    )


def timestamp(*, nullable: bool = False, index: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=index)


def json_field(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_column_kwargs={}, sa_type=JSON)


__all__ = [
    "Column",
    "UTCDateTime",
    "foreign_id",
    "id_field",
    "json_field",
    "new_id",
    "new_ids",
    "timestamp",
    "utcnow",
]
