"""Column types and id generation shared by every table."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import JSON, BigInteger, Column, DateTime, Table
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


class IdGenerator:
    """Time-ordered 63-bit ids: milliseconds since the epoch, then 16 random bits.

    Sorting by id sorts by creation time (timelines paginate on it), and ids are not guessable
    counters. Random bits alone repeat within a millisecond once a few hundred rows are made in it
    (the birthday bound), so an id that would not be greater than the last one issued becomes
    last + 1: within a process ids never repeat and only ever increase, and across processes on
    one database the random bits keep collisions unlikely.

    Layout: the millisecond clock needs 41 bits until the year 2039 and 47 until the year 6429, so
    with 16 low bits it fits a signed BIGINT (63 bits) for millennia; a burst of more than 65,536
    ids in one millisecond borrows from the next millisecond rather than overflowing.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last = 0
        # SQLAlchemy may call default factories from sync worker threads, not only the event loop.
        self._lock = threading.Lock()

    def __call__(self) -> int:
        candidate = (int(self._clock() * 1000) << 16) | secrets.randbits(16)
        with self._lock:
            self._last = candidate if candidate > self._last else self._last + 1
            return self._last


# One per process, like the clock it reads: ids must not repeat across every caller in the
# process (model default factories, services, the inbox worker), so they share the memory of the
# last id issued; separate instances would each forget what the others issued.
_process_ids = IdGenerator()


def new_id() -> int:
    """A new id, greater than any this process issued before (see IdGenerator)."""
    return _process_ids()


def new_ids(count: int) -> list[int]:
    """`count` distinct, increasing ids for one bulk insert."""
    return [new_id() for _ in range(count)]


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


def table_of(model: Any) -> Table:
    """The `Table` behind a SQLModel class, for statements that need no ORM objects (SQLModel's
    classes do not declare `__table__` to type checkers)."""
    table: Table = model.__table__
    return table


__all__ = [
    "Column",
    "IdGenerator",
    "UTCDateTime",
    "foreign_id",
    "id_field",
    "json_field",
    "new_id",
    "new_ids",
    "table_of",
    "timestamp",
    "utcnow",
]
