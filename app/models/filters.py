"""Content filters (Mastodon's filters v2): keywords and single posts an account does not want to
see, or wants a warning before, in the contexts it names."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import foreign_id, id_field, json_field, timestamp


class FilterAction(StrEnum):
    WARN = "warn"
    HIDE = "hide"
    BLUR = "blur"


class FilterContext(StrEnum):
    HOME = "home"
    NOTIFICATIONS = "notifications"
    PUBLIC = "public"
    THREAD = "thread"
    ACCOUNT = "account"


class ContentFilter(SQLModel, table=True):
    __tablename__ = "content_filter"

    id: int = id_field()
    account_id: int = foreign_id("account.id")
    title: str = Field(max_length=255)
    # FilterContext names.
    contexts: list[str] = json_field(list)
    action: str = Field(default=FilterAction.WARN, max_length=16)
    expires_at: datetime | None = timestamp(nullable=True)
    created_at: datetime = timestamp()


class FilterKeyword(SQLModel, table=True):
    __tablename__ = "filter_keyword"

    id: int = id_field()
    filter_id: int = foreign_id("content_filter.id")
    keyword: str = Field(max_length=255)
    whole_word: bool = True
    created_at: datetime = timestamp()


class FilterStatus(SQLModel, table=True):
    __tablename__ = "filter_status"
    __table_args__ = (UniqueConstraint("filter_id", "post_id"),)

    id: int = id_field()
    filter_id: int = foreign_id("content_filter.id")
    post_id: int = foreign_id("post.id")
    created_at: datetime = timestamp()
