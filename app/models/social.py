"""Relationships between accounts: follows, blocks and mutes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import foreign_id, id_field, json_field, timestamp


class FollowState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"


class Follow(SQLModel, table=True):
    __tablename__ = "follow"
    __table_args__ = (UniqueConstraint("follower_id", "followee_id"),)

    id: int = id_field()
    follower_id: int = foreign_id("account.id")
    followee_id: int = foreign_id("account.id")
    state: str = Field(default=FollowState.PENDING, max_length=16)
    # The id of the Follow activity, needed to Accept, Reject or Undo it.
    uri: str | None = Field(default=None, max_length=2048, index=True)
    created_at: datetime = timestamp()
    accepted_at: datetime | None = timestamp(nullable=True)
    # The follower's choices for a follow they made here (Mastodon's follow options): the
    # followee's boosts at home, a notification for each new post, and only posts in these
    # languages (empty: every language).
    show_reblogs: bool = Field(default=True)
    notify: bool = Field(default=False)
    languages: list[str] = json_field(list)


class AccountBlock(SQLModel, table=True):
    __tablename__ = "account_block"
    __table_args__ = (UniqueConstraint("account_id", "target_account_id"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id")
    target_account_id: int = foreign_id("account.id")
    uri: str | None = Field(default=None, max_length=2048)
    created_at: datetime = timestamp()


class AccountMute(SQLModel, table=True):
    __tablename__ = "account_mute"
    __table_args__ = (UniqueConstraint("account_id", "target_account_id"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id")
    target_account_id: int = foreign_id("account.id")
    created_at: datetime = timestamp()
    # False: the muted account's posts leave the timelines, but its notifications still arrive.
    hide_notifications: bool = Field(default=True)
    # A mute for a while (Mastodon's `duration`); None lasts until unmuted.
    expires_at: datetime | None = timestamp(nullable=True)


class AccountNote(SQLModel, table=True):
    """A private comment an account keeps about another (Mastodon's relationship `note`)."""

    __tablename__ = "account_note"
    __table_args__ = (UniqueConstraint("account_id", "target_account_id"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id")
    target_account_id: int = foreign_id("account.id")
    comment: str = ""
    updated_at: datetime = timestamp()


class UserDomainBlock(SQLModel, table=True):
    """A staff member hiding a whole domain for themselves (not an instance-wide block)."""

    __tablename__ = "user_domain_block"
    __table_args__ = (UniqueConstraint("account_id", "domain"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id")
    domain: str = Field(max_length=255)
    created_at: datetime = timestamp()
