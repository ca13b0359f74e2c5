"""Lists: an account's own selections of the accounts it follows, each a timeline of its own."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import foreign_id, id_field, timestamp


class RepliesPolicy(StrEnum):
    """Which replies a list shows (Mastodon's names): to any followed account, to list members, none."""

    FOLLOWED = "followed"
    LIST = "list"
    NONE = "none"


class UserList(SQLModel, table=True):
    __tablename__ = "user_list"

    id: int = id_field()
    account_id: int = foreign_id("account.id")
    title: str = Field(max_length=255)
    replies_policy: str = Field(default=RepliesPolicy.LIST, max_length=16)
    # The members' posts show in this list only, not on the home timeline.
    exclusive: bool = False
    created_at: datetime = timestamp()


class ListMember(SQLModel, table=True):
    __tablename__ = "list_member"
    __table_args__ = (UniqueConstraint("list_id", "account_id"),)

    id: int = id_field()
    list_id: int = foreign_id("user_list.id")
    account_id: int = foreign_id("account.id")
    created_at: datetime = timestamp()
