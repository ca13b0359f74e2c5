"""Announcements admins write for everyone on the server, shown by the apps (and dismissed,
or reacted to, per account)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import foreign_id, id_field, timestamp


class Announcement(SQLModel, table=True):
    __tablename__ = "announcement"

    id: int = id_field()
    text: str
    # Shown only between these moments, when set.
    starts_at: datetime | None = timestamp(nullable=True)
    ends_at: datetime | None = timestamp(nullable=True)
    all_day: bool = False
    created_by_user_id: int | None = foreign_id("users.id", nullable=True, ondelete="SET NULL")
    published_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class AnnouncementDismissal(SQLModel, table=True):
    """An account has read the announcement (Mastodon's `read`)."""

    __tablename__ = "announcement_dismissal"
    __table_args__ = (UniqueConstraint("announcement_id", "account_id"),)

    id: int = id_field()
    announcement_id: int = foreign_id("announcement.id", index=False)
    account_id: int = foreign_id("account.id")
    created_at: datetime = timestamp()


class AnnouncementReaction(SQLModel, table=True):
    """One account's emoji under an announcement (a Unicode emoji, or a custom one's shortcode)."""

    __tablename__ = "announcement_reaction"
    __table_args__ = (UniqueConstraint("announcement_id", "account_id", "name"),)

    id: int = id_field()
    announcement_id: int = foreign_id("announcement.id", index=False)
    account_id: int = foreign_id("account.id")
    name: str = Field(max_length=64)
    created_at: datetime = timestamp()
