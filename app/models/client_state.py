"""What a person keeps for themselves through the apps: bookmarks, muted conversations, read
markers, and the Idempotency-Key of each recent post (so a retried request posts once, across
processes and restarts)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import foreign_id, id_field, timestamp


class Bookmark(SQLModel, table=True):
    """A post kept by an account for later; seen by nobody else, sent nowhere."""

    __tablename__ = "bookmark"
    __table_args__ = (UniqueConstraint("account_id", "post_id"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id", index=False)
    post_id: int = foreign_id("post.id")
    created_at: datetime = timestamp()


class ConversationMute(SQLModel, table=True):
    """A thread whose notifications an account no longer wants. The key is the thread's
    conversation URI (the post's own URI when it names none)."""

    __tablename__ = "conversation_mute"
    __table_args__ = (UniqueConstraint("account_id", "conversation_uri"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id", index=False)
    conversation_uri: str = Field(max_length=2048)
    created_at: datetime = timestamp()


class Marker(SQLModel, table=True):
    """How far a person has read a timeline (`home` or `notifications`), shared between their apps."""

    __tablename__ = "marker"
    __table_args__ = (UniqueConstraint("account_id", "timeline"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id", index=False)
    timeline: str = Field(max_length=16)
    last_read_id: int = Field(default=0, sa_type=BigInteger)
    version: int = 0
    updated_at: datetime = timestamp()


class IdempotencyKey(SQLModel, table=True):
    """The post a token's request with this Idempotency-Key made; honoured for an hour."""

    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("token_id", "key"),)

    id: int = id_field()
    token_id: int = foreign_id("oauth_access_token.id", index=False)
    key: str = Field(max_length=256)
    post_id: int | None = foreign_id("post.id", nullable=True, index=False)
    created_at: datetime = timestamp(index=True)
