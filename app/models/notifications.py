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


class PushSubscription(SQLModel, table=True):
    """A Web Push subscription: one per access token, as on Mastodon (a new one replaces it)."""

    __tablename__ = "push_subscription"
    __table_args__ = (Index("ux_push_subscription_token", "access_token_id", unique=True),)

    id: int = id_field()
    access_token_id: int = foreign_id("oauth_access_token.id", index=False)
    account_id: int = foreign_id("account.id")
    endpoint: str = Field(max_length=2048)
    # The browser's or app's keys (base64url): its P-256 public key and the 16-byte auth secret.
    key_p256dh: str = Field(max_length=255)
    key_auth: str = Field(max_length=255)
    # The token itself, sealed with SECRET_KEY: Mastodon puts it in each payload (apps tell their
    # accounts apart by it), but the database keeps only hashes of usable tokens.
    sealed_token: str = Field(max_length=512)
    # Mastodon's alert names that are wanted, space separated.
    alerts: str = Field(default="", max_length=512)
    policy: str = Field(default="all", max_length=16)
    # RFC 8291's aes128gcm when the app said `standard`; else the older aesgcm Mastodon still sends.
    standard: bool = False
    created_at: datetime = timestamp()
