"""Notifications shown to local accounts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from app.models.base import foreign_id, id_field, timestamp


class NotificationType(StrEnum):
    FOLLOW = "follow"
    FOLLOW_REQUEST = "follow_request"
    MENTION = "mention"
    REPLY = "reply"
    REBLOG = "reblog"
    FAVOURITE = "favourite"
    REACTION = "reaction"
    POLL = "poll"
    UPDATE = "update"
    MOVE = "move"
    REPORT = "admin.report"
    # A post by an account followed with `notify` (Mastodon's bell).
    STATUS = "status"
    # Someone signed up (for administrators; REGISTRATIONS=approval or open).
    SIGN_UP = "admin.sign_up"


class Notification(SQLModel, table=True):
    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_account", "account_id", "id"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id", index=False)
    from_account_id: int = foreign_id("account.id")
    type: str = Field(max_length=32)
    post_id: int | None = foreign_id("post.id", nullable=True)
    # Reaction emoji, for type "reaction".
    detail: str | None = Field(default=None, max_length=255)
    created_at: datetime = timestamp()
    read_at: datetime | None = timestamp(nullable=True)
