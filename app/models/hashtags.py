"""Hashtags an account follows (their public posts reach its home timeline) or features on its
profile."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import SQLModel

from app.models.base import foreign_id, id_field, timestamp


class FollowedTag(SQLModel, table=True):
    __tablename__ = "followed_tag"
    __table_args__ = (UniqueConstraint("account_id", "tag_id"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id")
    tag_id: int = foreign_id("tag.id")
    created_at: datetime = timestamp()


class FeaturedTag(SQLModel, table=True):
    __tablename__ = "featured_tag"
    __table_args__ = (UniqueConstraint("account_id", "tag_id"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id")
    tag_id: int = foreign_id("tag.id")
    created_at: datetime = timestamp()
