"""OAuth 2 for the client API: registered applications, authorization codes and access tokens.

Every secret is stored as its SHA-256 hash (the random values have 256 bits, so a plain hash is
enough): a leaked database holds no usable client secret, code or token.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.models.base import foreign_id, id_field, json_field, timestamp


class OAuthApplication(SQLModel, table=True):
    """An app registered through POST /api/v1/apps, Settings → Development or the command line."""

    __tablename__ = "oauth_application"

    id: int = id_field()
    name: str = Field(max_length=255)
    website: str | None = Field(default=None, max_length=2048)
    # One per line, as Mastodon's `redirect_uri` shows them.
    redirect_uris: list[str] = json_field(list)
    scopes: str = Field(default="read", max_length=1024)
    client_id: str = Field(max_length=64, unique=True)
    client_secret_hash: str = Field(max_length=64)
    # The person who created it in Settings → Development or with `herold tokens create`.
    owner_user_id: int | None = foreign_id("users.id", nullable=True)
    created_at: datetime = timestamp()


class OAuthAuthorizationCode(SQLModel, table=True):
    """A code handed to the app's redirect URI: single use, valid for ten minutes."""

    __tablename__ = "oauth_authorization_code"

    id: int = id_field()
    code_hash: str = Field(max_length=64, unique=True)
    application_id: int = foreign_id("oauth_application.id")
    user_id: int = foreign_id("users.id")
    # The account the token will act as: the user's own or an organisation they post for.
    account_id: int = foreign_id("account.id")
    redirect_uri: str = Field(max_length=2048)
    scopes: str = Field(max_length=1024)
    code_challenge: str | None = Field(default=None, max_length=128)
    code_challenge_method: str | None = Field(default=None, max_length=16)
    created_at: datetime = timestamp()
    expires_at: datetime = timestamp()
    used_at: datetime | None = timestamp(nullable=True)


class OAuthAccessToken(SQLModel, table=True):
    """A bearer token. Without a user it is an app token (client_credentials): it may register
    accounts and read public things, nothing on anyone's behalf."""

    __tablename__ = "oauth_access_token"

    id: int = id_field()
    token_hash: str = Field(max_length=64, unique=True)
    application_id: int = foreign_id("oauth_application.id")
    user_id: int | None = foreign_id("users.id", nullable=True)
    # The account it acts as; None for an app token.
    account_id: int | None = foreign_id("account.id", nullable=True)
    scopes: str = Field(max_length=1024)
    created_at: datetime = timestamp()
    last_used_at: datetime | None = timestamp(nullable=True)
    revoked_at: datetime | None = timestamp(nullable=True)
