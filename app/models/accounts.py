"""Accounts: local staff and organisation accounts, remote actors we know of, and the people who log in."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.models.base import foreign_id, id_field, json_field, timestamp


class ActorType(StrEnum):
    PERSON = "Person"
    ORGANIZATION = "Organization"
    SERVICE = "Service"
    APPLICATION = "Application"
    GROUP = "Group"


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"


class Account(SQLModel, table=True):
    """An actor: local when `domain` is None, otherwise a cached remote actor."""

    __tablename__ = "account"
    __table_args__ = (
        # Not unique for remote actors: one Lemmy host serves a user and a community under the same name.
        Index("ix_account_username_domain", "username", "domain"),
        # Local names are unique (stored lower-cased, so case-insensitively).
        Index(
            "uq_account_local_username",
            "username",
            unique=True,
            sqlite_where=text("domain IS NULL"),
            postgresql_where=text("domain IS NULL"),
        ),
    )

    id: int = id_field()
    username: str = Field(max_length=255)
    # Lower-case host with optional port; None for local accounts.
    domain: str | None = Field(default=None, max_length=255, index=True)
    actor_type: str = Field(default=ActorType.PERSON, max_length=32)
    display_name: str = Field(default="", max_length=255)
    summary_html: str = ""
    uri: str = Field(max_length=2048, unique=True)
    url: str | None = Field(default=None, max_length=2048)
    inbox_url: str = Field(default="", max_length=2048)
    shared_inbox_url: str | None = Field(default=None, max_length=2048)
    outbox_url: str | None = Field(default=None, max_length=2048)
    followers_url: str | None = Field(default=None, max_length=2048)
    following_url: str | None = Field(default=None, max_length=2048)
    featured_url: str | None = Field(default=None, max_length=2048)
    key_id: str = Field(default="", max_length=2048, index=True)
    public_key_pem: str = ""
    # Only local accounts hold a private key.
    private_key_pem: str | None = None
    manually_approves_followers: bool = False
    discoverable: bool = True
    indexable: bool = True
    avatar_url: str | None = Field(default=None, max_length=2048)
    header_url: str | None = Field(default=None, max_length=2048)
    # A remote account's pictures copied here (app.services.remote_media), and the URL each copy was
    # made from: when the account changes its picture, the stale copy is no longer shown.
    avatar_cached_url: str | None = Field(default=None, max_length=2048)
    avatar_cached_from: str | None = Field(default=None, max_length=2048)
    header_cached_url: str | None = Field(default=None, max_length=2048)
    header_cached_from: str | None = Field(default=None, max_length=2048)
    pictures_cached_at: datetime | None = timestamp(nullable=True, index=True)
    fields: list[dict[str, Any]] = json_field(list)
    also_known_as: list[str] = json_field(list)
    moved_to_uri: str | None = Field(default=None, max_length=2048)
    emojis: list[dict[str, Any]] = json_field(list)
    followers_count: int = 0
    following_count: int = 0
    posts_count: int = 0
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()
    last_post_at: datetime | None = timestamp(nullable=True)
    # When the remote actor document was last fetched (refreshed after a day or on Update).
    fetched_at: datetime | None = timestamp(nullable=True)

    @property
    def avatar_shown(self) -> str | None:
        """The avatar pages and apps load: the copy here when there is a current one."""
        if self.avatar_cached_url and self.avatar_cached_from == self.avatar_url:
            return self.avatar_cached_url
        return self.avatar_url

    @property
    def header_shown(self) -> str | None:
        if self.header_cached_url and self.header_cached_from == self.header_url:
            return self.header_cached_url
        return self.header_url

    # A remote server answered 410 Gone for this actor, or sent its Delete.
    gone_at: datetime | None = timestamp(nullable=True)
    # A local account that was deleted: its actor URL answers 410 with a Tombstone.
    deleted_at: datetime | None = timestamp(nullable=True)
    suspended_at: datetime | None = timestamp(nullable=True)
    silenced_at: datetime | None = timestamp(nullable=True)

    @property
    def is_local(self) -> bool:
        return self.domain is None

    def handle(self, local_domain: str) -> str:
        return f"{self.username}@{self.domain or local_domain}"

    @property
    def acct(self) -> str:
        """Mastodon's `acct`: `name` for a local account, `name@domain` for a remote one."""
        return self.username if self.domain is None else f"{self.username}@{self.domain}"


class User(SQLModel, table=True):
    """A person (or the organisation itself) who can log in; owns exactly one local account."""

    __tablename__ = "users"

    id: int = id_field()
    account_id: int = foreign_id("account.id")
    email: str | None = Field(default=None, max_length=320)
    password_hash: str = ""
    role: str = Field(default=Role.STAFF, max_length=16)
    locale: str | None = Field(default=None, max_length=16)
    disabled_at: datetime | None = timestamp(nullable=True)
    created_at: datetime = timestamp()
    last_login_at: datetime | None = timestamp(nullable=True)
    # Signed up while registrations need approval, and not yet approved: cannot log in.
    awaiting_approval: bool = Field(default=False)
    # Why they asked to join (shown to admins approving sign-ups).
    sign_up_reason: str | None = Field(default=None, max_length=1000)
    # Posting defaults (Mastodon's `source`): audience, sensitive media, language.
    default_privacy: str = Field(default="public", max_length=16)
    default_sensitive: bool = Field(default=False)
    default_language: str | None = Field(default=None, max_length=16)


class AccountDelegate(SQLModel, table=True):
    """A staff member allowed to post as an organisation account."""

    __tablename__ = "account_delegate"
    __table_args__ = (UniqueConstraint("organization_account_id", "user_id"),)

    id: int = id_field()
    organization_account_id: int = foreign_id("account.id")
    user_id: int = foreign_id("users.id")
    granted_by_user_id: int | None = foreign_id("users.id", nullable=True, ondelete="SET NULL")
    created_at: datetime = timestamp()


class WebSession(SQLModel, table=True):
    """A browser login; the cookie carries only a random token whose hash is stored here."""

    __tablename__ = "web_session"

    id: int = id_field()
    token_hash: str = Field(max_length=128, unique=True)
    user_id: int = foreign_id("users.id")
    csrf_token: str = Field(max_length=128)
    created_at: datetime = timestamp()
    expires_at: datetime = timestamp(index=True)
    user_agent: str = Field(default="", max_length=512)
