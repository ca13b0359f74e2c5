"""Custom emoji of other servers, as copied here: one row per :shortcode: of a domain, shared by
every post of that domain that uses it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import id_field, timestamp


class RemoteEmoji(SQLModel, table=True):
    __tablename__ = "remote_emoji"
    __table_args__ = (UniqueConstraint("domain", "shortcode"),)

    id: int = id_field()
    # The domain of the accounts whose posts use it (the emoji's owner, as Mastodon keys them).
    domain: str = Field(max_length=255)
    shortcode: str = Field(max_length=255)
    # The picture on its server, as the latest post using the shortcode named it.
    image_url: str = Field(max_length=2048)
    # The copy here (a PNG still) and the picture it was made from; None until copied.
    cached_url: str | None = Field(default=None, max_length=2048)
    cached_from: str | None = Field(default=None, max_length=2048)
    # When the copy was made: copies older than MEDIA_CACHE_RETENTION_DAYS are dropped with the
    # other cached remote media (and made again when a post names the emoji).
    cached_at: datetime | None = timestamp(nullable=True)
    # Why `image_url` could not be copied (not a picture, too large, unreachable); None once copied.
    failure: str | None = Field(default=None, max_length=1024)
    updated_at: datetime = timestamp()
