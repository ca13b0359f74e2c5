"""Posts (statuses), their edits, mentions, tags, media, polls, likes and reactions. A boost is a post too."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import foreign_id, id_field, json_field, timestamp


class Visibility(StrEnum):
    PUBLIC = "public"
    UNLISTED = "unlisted"
    FOLLOWERS = "followers"
    DIRECT = "direct"


class Post(SQLModel, table=True):
    __tablename__ = "post"
    __table_args__ = (
        Index("ix_post_account_timeline", "account_id", "id"),
        Index("ix_post_reblog", "reblog_of_id", "account_id"),
    )

    id: int = id_field()
    uri: str = Field(max_length=2048, unique=True)
    url: str | None = Field(default=None, max_length=2048)
    account_id: int = foreign_id("account.id", index=False)
    # The staff member who wrote a post published as an organisation account.
    written_by_user_id: int | None = foreign_id("users.id", nullable=True, ondelete="SET NULL")
    local: bool = Field(default=False, index=True)
    object_type: str = Field(default="Note", max_length=32)
    visibility: str = Field(default=Visibility.PUBLIC, max_length=16)
    content_html: str = ""
    # What the author typed, for local posts (edits start from it).
    content_source: str | None = None
    summary: str | None = None
    sensitive: bool = False
    language: str | None = Field(default=None, max_length=16)
    in_reply_to_uri: str | None = Field(default=None, max_length=2048, index=True)
    in_reply_to_id: int | None = foreign_id("post.id", nullable=True, ondelete="SET NULL")
    in_reply_to_account_id: int | None = foreign_id("account.id", nullable=True, ondelete="SET NULL")
    conversation_uri: str | None = Field(default=None, max_length=2048)
    reblog_of_id: int | None = foreign_id("post.id", nullable=True, index=False)
    # Addressing as received or sent, so visibility checks and re-delivery need no guessing.
    to: list[str] = json_field(list)
    cc: list[str] = json_field(list)
    emojis: list[dict[str, Any]] = json_field(list)
    replies_count: int = 0
    reblogs_count: int = 0
    favourites_count: int = 0
    published_at: datetime = timestamp()
    edited_at: datetime | None = timestamp(nullable=True)
    created_at: datetime = timestamp()
    deleted_at: datetime | None = timestamp(nullable=True)


class PostEdit(SQLModel, table=True):
    """A previous version of a post, kept when it is edited."""

    __tablename__ = "post_edit"

    id: int = id_field()
    post_id: int = foreign_id("post.id")
    content_html: str
    summary: str | None = None
    sensitive: bool = False
    created_at: datetime = timestamp()


class Mention(SQLModel, table=True):
    __tablename__ = "mention"
    __table_args__ = (UniqueConstraint("post_id", "account_id"),)

    id: int = id_field()
    post_id: int = foreign_id("post.id")
    account_id: int = foreign_id("account.id")


class Tag(SQLModel, table=True):
    __tablename__ = "tag"

    id: int = id_field()
    # Lower-cased; what is displayed comes from the post's own HTML.
    name: str = Field(max_length=255, unique=True)
    created_at: datetime = timestamp()


class PostTag(SQLModel, table=True):
    __tablename__ = "post_tag"
    __table_args__ = (UniqueConstraint("post_id", "tag_id"),)

    id: int = id_field()
    post_id: int = foreign_id("post.id")
    tag_id: int = foreign_id("tag.id")


class MediaState(StrEnum):
    # Uploaded, waiting for (or in) its processing job.
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    # A remote file not (or no longer) cached here: `url` is the original's.
    REMOTE = "remote"


class MediaAttachment(SQLModel, table=True):
    """A file attached (or to be attached) to a post: an upload by a local account, or a remote
    post's attachment, cached here when it reached a local timeline."""

    __tablename__ = "media_attachment"

    id: int = id_field()
    post_id: int | None = foreign_id("post.id", nullable=True)
    account_id: int = foreign_id("account.id")
    # The file's own type as served (image/jpeg, video/mp4, ...).
    media_type: str = Field(default="", max_length=128)
    # Mastodon's kind: image, gifv, video, audio, unknown.
    kind: str = Field(default="", max_length=16)
    state: str = Field(default=MediaState.REMOTE, max_length=16)
    # Where it is served from: here for uploads and cached copies, the original otherwise.
    url: str = Field(default="", max_length=2048)
    preview_url: str | None = Field(default=None, max_length=2048)
    remote_url: str | None = Field(default=None, max_length=2048)
    # Keys in the media store (relative to DATA_DIR/media) of the kept file and its preview.
    file_path: str | None = Field(default=None, max_length=1024)
    preview_path: str | None = Field(default=None, max_length=1024)
    # The raw upload waiting for the worker (deleted once processed).
    upload_path: str | None = Field(default=None, max_length=1024)
    file_size: int = 0
    description: str | None = None
    blurhash: str | None = Field(default=None, max_length=255)
    width: int | None = None
    height: int | None = None
    # Mastodon's `meta` (original/small sizes, duration, focus).
    meta: dict[str, Any] = json_field(dict)
    focus_x: float = 0.0
    focus_y: float = 0.0
    processing_error: str | None = Field(default=None, max_length=1024)
    position: int = 0
    created_at: datetime = timestamp()
    # When a remote file was last cached here (the cleanup drops copies older than the retention).
    cached_at: datetime | None = timestamp(nullable=True, index=True)


class Poll(SQLModel, table=True):
    __tablename__ = "poll"

    id: int = id_field()
    post_id: int = foreign_id("post.id", index=False)
    # [{"title": "...", "votes": 0}, ...]
    options: list[dict[str, Any]] = json_field(list)
    multiple: bool = False
    expires_at: datetime | None = timestamp(nullable=True)
    voters_count: int = 0
    votes_count: int = 0


class PollVote(SQLModel, table=True):
    __tablename__ = "poll_vote"
    __table_args__ = (UniqueConstraint("poll_id", "account_id", "choice"),)

    id: int = id_field()
    poll_id: int = foreign_id("poll.id")
    account_id: int = foreign_id("account.id")
    choice: int
    uri: str | None = Field(default=None, max_length=2048)
    created_at: datetime = timestamp()


class Favourite(SQLModel, table=True):
    """A Like."""

    __tablename__ = "favourite"
    __table_args__ = (UniqueConstraint("account_id", "post_id"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id")
    post_id: int = foreign_id("post.id")
    uri: str | None = Field(default=None, max_length=2048, index=True)
    created_at: datetime = timestamp()


class Reaction(SQLModel, table=True):
    """An emoji reaction (Misskey's EmojiReact, Pleroma's EmojiReact)."""

    __tablename__ = "reaction"
    __table_args__ = (UniqueConstraint("account_id", "post_id", "content"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id")
    post_id: int = foreign_id("post.id")
    content: str = Field(max_length=255)
    emoji_url: str | None = Field(default=None, max_length=2048)
    uri: str | None = Field(default=None, max_length=2048, index=True)
    created_at: datetime = timestamp()


class Pin(SQLModel, table=True):
    """A post in its author's featured collection."""

    __tablename__ = "pin"
    __table_args__ = (UniqueConstraint("account_id", "post_id"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id")
    post_id: int = foreign_id("post.id")
    created_at: datetime = timestamp()


class TimelineEntry(SQLModel, table=True):
    """A post (or boost) in a local account's home timeline, written at fan-in time."""

    __tablename__ = "timeline_entry"
    # The unique constraint doubles as the (account, post) index timelines page through.
    __table_args__ = (UniqueConstraint("account_id", "post_id"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id", index=False)
    post_id: int = foreign_id("post.id")
    created_at: datetime = timestamp()
