"""OAuth 2 as Mastodon speaks it: registering apps, authorization codes (with PKCE), tokens.

Hand-written rather than Authlib: Authlib's authorization server ships integrations for Flask and
Django only, with synchronous model hooks; the grants Mastodon's clients use (authorization_code
with PKCE S256, client_credentials; no password grant) fit in this module, on our async session.

Every secret is a 256-bit random value kept only as its SHA-256 hash; comparisons of secrets the
client sends are constant-time. Codes are single use and live ten minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy import select as sql_select
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, ActorType, OAuthAccessToken, OAuthApplication, OAuthAuthorizationCode, User
from app.models.base import utcnow
from app.services.errors import Invalid, NotFound
from app.services.viewer import Viewer

OOB_REDIRECT_URI = "urn:ietf:wg:oauth:2.0:oob"
CODE_LIFETIME = timedelta(minutes=10)
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)

READ_SCOPES = (
    "read:accounts read:blocks read:bookmarks read:favourites read:filters read:follows read:lists "
    "read:mutes read:notifications read:search read:statuses"
).split()
WRITE_SCOPES = (
    "write:accounts write:blocks write:bookmarks write:conversations write:favourites write:filters "
    "write:follows write:lists write:media write:mutes write:notifications write:reports write:statuses"
).split()
ADMIN_SCOPES = ["admin:read", "admin:write"]
SCOPES_SUPPORTED = ("read", "write", "follow", "push", "profile", *READ_SCOPES, *WRITE_SCOPES, *ADMIN_SCOPES)
_KNOWN_SCOPES = frozenset(SCOPES_SUPPORTED)


def secret_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _same_secret(given: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(given), stored_hash)


def parse_scopes(value: str | None, default: str = "read") -> list[str]:
    """Scopes in the order given, without repeats; Invalid names the first unknown one."""
    names: list[str] = []
    for name in (value or default).replace("+", " ").replace(",", " ").split():
        if name not in _KNOWN_SCOPES:
            raise Invalid(f"scope: unknown scope {name!r}")
        if name not in names:
            names.append(name)
    return names or [default]


def pkce_s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class GrantRefused(Invalid):
    """An OAuth request refused with one of RFC 6749's error codes (invalid_grant, invalid_client…)."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code


@dataclass(frozen=True)
class RegisteredApp:
    application: OAuthApplication
    # Shown once, at registration: only its hash is kept.
    client_secret: str


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    scopes: list[str]
    created_at: datetime


@dataclass(frozen=True)
class TokenHolder:
    """Who a valid bearer token speaks for: a user acting as an account, or only an app."""

    token: OAuthAccessToken
    application: OAuthApplication
    user: User | None
    own_account: Account | None
    acting_account: Account | None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.token.scopes.split())


@dataclass(frozen=True)
class AuthorizedApp:
    application: OAuthApplication
    acting_account: Account
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None


def _check_redirect_uri(uri: str) -> str:
    uri = uri.strip()
    if uri == OOB_REDIRECT_URI:
        return uri
    scheme, sep, rest = uri.partition(":")
    # Custom schemes (oauth2redirect://…, icecubesapp://, com.tapbots.Ivory…:/request_token) are
    # how phone apps get the code back, so any scheme is allowed; fragments are not (RFC 6749 3.1.2).
    if not sep or not scheme or not rest or not scheme[0].isalpha() or "#" in uri or len(uri) > 2000:
        raise Invalid(f"redirect_uris: {uri!r} is not an absolute URI")
    if any(ch.isspace() for ch in uri):
        raise Invalid("redirect_uris: a URI may not contain spaces")
    return uri


class OAuthService:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def register_app(
        self,
        name: str,
        redirect_uris: list[str],
        *,
        scopes: str | None = None,
        website: str | None = None,
        owner_user_id: int | None = None,
    ) -> RegisteredApp:
        name = name.strip()
        if not name:
            raise Invalid("client_name: can't be blank")
        if len(name) > 255:
            raise Invalid("client_name: is too long (maximum is 255 characters)")
        if website is not None and len(website) > 2000:
            raise Invalid("website: is too long")
        uris = [_check_redirect_uri(uri) for uri in redirect_uris if uri.strip()]
        if not uris:
            raise Invalid("redirect_uris: can't be blank")
        client_secret = secrets.token_urlsafe(32)
        application = OAuthApplication(
            name=name,
            website=website or None,
            redirect_uris=uris,
            scopes=" ".join(parse_scopes(scopes)),
            client_id=secrets.token_urlsafe(32),
            client_secret_hash=secret_hash(client_secret),
            owner_user_id=owner_user_id,
        )
        async with self.context.sessions() as session:
            session.add(application)
            await session.commit()
            await session.refresh(application)
        return RegisteredApp(application, client_secret)

    async def application(self, client_id: str) -> OAuthApplication:
        async with self.context.sessions() as session:
            application = (
                await session.scalars(select(OAuthApplication).where(OAuthApplication.client_id == client_id))
            ).first()
        if application is None:
            raise NotFound("no application with this client_id")
        return application

    async def check_authorization_request(
        self, client_id: str, redirect_uri: str, scope: str | None
    ) -> tuple[OAuthApplication, list[str]]:
        """The app and the scopes asked for, if the request may be shown to the user at all.

        Raised errors must be shown on a page, never sent to the redirect URI: an unknown client
        or an unregistered URI would otherwise make us an open redirector."""
        application = await self.application(client_id)
        if redirect_uri not in application.redirect_uris:
            raise GrantRefused("invalid_request", "redirect_uri: not one this application registered")
        requested = parse_scopes(scope, default=application.scopes.split()[0])
        allowed = set(application.scopes.split())
        outside = [name for name in requested if name not in allowed and name.split(":")[0] not in allowed]
        if outside:
            raise GrantRefused("invalid_scope", f"scope: the application did not register {outside[0]!r}")
        return application, requested

    async def previously_authorized(self, user_id: int, application_id: int, scopes: list[str]) -> int | None:
        """The account a live token of this user for this app acts as, if it holds exactly these scopes."""
        async with self.context.sessions() as session:
            tokens = (
                await session.scalars(
                    select(OAuthAccessToken)
                    .where(
                        OAuthAccessToken.user_id == user_id,
                        OAuthAccessToken.application_id == application_id,
                        col(OAuthAccessToken.revoked_at).is_(None),
                    )
                    .order_by(col(OAuthAccessToken.id).desc())
                )
            ).all()
        for token in tokens:
            if set(token.scopes.split()) == set(scopes):
                return token.account_id
        return None

    async def grant_code(
        self,
        viewer: Viewer,
        application: OAuthApplication,
        *,
        redirect_uri: str,
        scopes: list[str],
        account_id: int,
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
    ) -> str:
        """A code for the logged-in person, acting as `account_id` (their own or an organisation's)."""
        if viewer.user is None:
            raise Invalid("log in first")
        viewer.require_act_as(account_id)
        if code_challenge:
            if (code_challenge_method or "plain") != "S256":
                raise GrantRefused("invalid_request", "code_challenge_method: only S256 is supported")
            if not 43 <= len(code_challenge) <= 128:
                raise GrantRefused("invalid_request", "code_challenge: must be 43 to 128 characters")
        code = secrets.token_urlsafe(32)
        now = utcnow()
        async with self.context.sessions() as session:
            session.add(
                OAuthAuthorizationCode(
                    code_hash=secret_hash(code),
                    application_id=application.id,
                    user_id=viewer.user.id,
                    account_id=account_id,
                    redirect_uri=redirect_uri,
                    scopes=" ".join(scopes),
                    code_challenge=code_challenge or None,
                    code_challenge_method="S256" if code_challenge else None,
                    created_at=now,
                    expires_at=now + CODE_LIFETIME,
                )
            )
            await session.commit()
        return code

    async def _client(self, client_id: str | None, client_secret: str | None) -> OAuthApplication:
        try:
            application = await self.application(client_id or "")
        except NotFound:
            application = None
        if application is None or not _same_secret(client_secret or "", application.client_secret_hash):
            raise GrantRefused(
                "invalid_client", "Client authentication failed due to unknown client or wrong secret"
            )
        return application

    async def exchange_code(
        self,
        *,
        client_id: str | None,
        client_secret: str | None,
        code: str | None,
        redirect_uri: str | None,
        code_verifier: str | None,
    ) -> IssuedToken:
        application = await self._client(client_id, client_secret)
        if not code:
            raise GrantRefused("invalid_request", "code: missing")
        now = utcnow()
        async with self.context.sessions() as session:
            grant = (
                await session.scalars(
                    select(OAuthAuthorizationCode).where(
                        OAuthAuthorizationCode.code_hash == secret_hash(code)
                    )
                )
            ).first()
            if (
                grant is None
                or grant.application_id != application.id
                or grant.used_at is not None
                or grant.expires_at <= now
            ):
                raise GrantRefused(
                    "invalid_grant",
                    "The provided authorization grant is invalid, expired, revoked, "
                    "does not match the redirection URI used in the authorization request, "
                    "or was issued to another client.",
                )
            if (redirect_uri or "") != grant.redirect_uri:
                raise GrantRefused(
                    "invalid_grant", "redirect_uri: differs from the one the code was issued for"
                )
            if grant.code_challenge is not None and not hmac.compare_digest(
                pkce_s256(code_verifier or ""), grant.code_challenge
            ):
                raise GrantRefused("invalid_grant", "code_verifier: does not match the code_challenge")
            # Single use even under a race: only the request whose UPDATE matched gets a token.
            claimed = await session.execute(
                update(OAuthAuthorizationCode)
                .where(
                    col(OAuthAuthorizationCode.id) == grant.id, col(OAuthAuthorizationCode.used_at).is_(None)
                )
                .values(used_at=now)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                raise GrantRefused("invalid_grant", "the code has been used already")
            token, issued = self._new_token(
                application.id, grant.scopes.split(), grant.user_id, grant.account_id
            )
            session.add(token)
            await session.commit()
        return issued

    async def client_credentials(
        self, *, client_id: str | None, client_secret: str | None, scope: str | None
    ) -> IssuedToken:
        application = await self._client(client_id, client_secret)
        try:
            scopes = parse_scopes(scope, default=application.scopes.split()[0])
        except Invalid as error:
            raise GrantRefused("invalid_scope", error.message) from None
        token, issued = self._new_token(application.id, scopes, None, None)
        async with self.context.sessions() as session:
            session.add(token)
            await session.commit()
        return issued

    async def issue_sign_up_token(
        self, application: OAuthApplication, user: User, scopes: list[str]
    ) -> IssuedToken:
        """The token `POST /api/v1/accounts` answers with: for the app that signed the person up,
        acting as their new account (unusable while the sign-up awaits approval)."""
        token, issued = self._new_token(application.id, scopes, user.id, user.account_id)
        async with self.context.sessions() as session:
            session.add(token)
            await session.commit()
        return issued

    def _new_token(
        self, application_id: int, scopes: list[str], user_id: int | None, account_id: int | None
    ) -> tuple[OAuthAccessToken, IssuedToken]:
        value = secrets.token_urlsafe(32)
        now = utcnow()
        row = OAuthAccessToken(
            token_hash=secret_hash(value),
            application_id=application_id,
            user_id=user_id,
            account_id=account_id,
            scopes=" ".join(scopes),
            created_at=now,
        )
        return row, IssuedToken(value, scopes, now)

    async def revoke(self, *, client_id: str | None, client_secret: str | None, token: str | None) -> None:
        """RFC 7009: revoking an unknown token (or another app's) succeeds silently."""
        application = await self._client(client_id, client_secret)
        if not token:
            return
        async with self.context.sessions() as session:
            await session.execute(
                update(OAuthAccessToken)
                .where(
                    col(OAuthAccessToken.token_hash) == secret_hash(token),
                    col(OAuthAccessToken.application_id) == application.id,
                    col(OAuthAccessToken.revoked_at).is_(None),
                )
                .values(revoked_at=utcnow())
            )
            await session.commit()

    async def token_holder(self, token: str) -> TokenHolder | None:
        """Who `token` speaks for, or None: unknown, revoked, a disabled user, a gone account."""
        if not token or len(token) > 200:
            return None
        now = utcnow()
        async with self.context.sessions() as session:
            # One query for the token, its app, its person and the account it acts as (every API
            # request asks); the person's own account is read apart only for an organisation's token.
            row = (
                await session.execute(
                    sql_select(OAuthAccessToken, OAuthApplication, User, Account)
                    .join(OAuthApplication, col(OAuthApplication.id) == col(OAuthAccessToken.application_id))
                    .outerjoin(User, col(User.id) == col(OAuthAccessToken.user_id))
                    .outerjoin(Account, col(Account.id) == col(OAuthAccessToken.account_id))
                    .where(col(OAuthAccessToken.token_hash) == secret_hash(token))
                )
            ).first()
            if row is None or row[0].revoked_at is not None:
                return None
            access, application = row[0], row[1]
            user: User | None = None
            own: Account | None = None
            acting: Account | None = None
            if access.user_id is not None:
                user, acting = row[2], row[3]
                if user is None or user.disabled_at is not None or user.awaiting_approval:
                    return None
                own = (
                    acting
                    if user.account_id == access.account_id
                    else await session.get(Account, user.account_id)
                )
                for account in (own, acting):
                    if account is None or account.deleted_at is not None or account.suspended_at is not None:
                        return None
                if own is not None and own.actor_type == ActorType.ORGANIZATION:
                    return None
            if access.last_used_at is None or now - access.last_used_at > LAST_USED_RESOLUTION:
                await session.execute(
                    update(OAuthAccessToken)
                    .where(col(OAuthAccessToken.id) == access.id)
                    .values(last_used_at=now)
                )
                await session.commit()
        return TokenHolder(access, application, user, own, acting)

    async def live_token_ids(self, token_ids: set[int]) -> set[int]:
        """Which of these tokens still speak for someone, by token_holder's rule: not revoked, and
        their person enabled and their accounts neither deleted nor suspended (open streaming
        connections are checked so, and closed when their token dies)."""
        if not token_ids:
            return set()
        own = aliased(Account)
        acting = aliased(Account)
        usable = [
            col(own.deleted_at).is_(None),
            col(own.suspended_at).is_(None),
            col(acting.deleted_at).is_(None),
            col(acting.suspended_at).is_(None),
        ]
        async with self.context.sessions() as session:
            found = await session.scalars(
                select(col(OAuthAccessToken.id))
                .outerjoin(User, col(User.id) == col(OAuthAccessToken.user_id))
                .outerjoin(own, col(own.id) == col(User.account_id))
                .outerjoin(acting, col(acting.id) == col(OAuthAccessToken.account_id))
                .where(
                    col(OAuthAccessToken.id).in_(list(token_ids)),
                    col(OAuthAccessToken.revoked_at).is_(None),
                    or_(
                        col(OAuthAccessToken.user_id).is_(None),
                        and_(col(User.disabled_at).is_(None), *usable),
                    ),
                )
            )
            return set(found.all())

    async def issue_personal_token(
        self, user: User, *, scopes: str | None, app_name: str, acting_as: Account
    ) -> str:
        """A token made without the authorize page (the command line, Settings → Development)."""
        names = parse_scopes(scopes, default="read")
        registered = await self.register_app(
            app_name, [OOB_REDIRECT_URI], scopes=" ".join(names), owner_user_id=user.id
        )
        token, issued = self._new_token(registered.application.id, names, user.id, acting_as.id)
        async with self.context.sessions() as session:
            session.add(token)
            await session.commit()
        return issued.access_token

    async def authorized_apps(self, user_id: int) -> list[AuthorizedApp]:
        async with self.context.sessions() as session:
            rows = (
                await session.execute(
                    select(OAuthAccessToken, OAuthApplication, Account)
                    .join(OAuthApplication, col(OAuthApplication.id) == col(OAuthAccessToken.application_id))
                    .join(Account, col(Account.id) == col(OAuthAccessToken.account_id))
                    .where(OAuthAccessToken.user_id == user_id, col(OAuthAccessToken.revoked_at).is_(None))
                    .order_by(col(OAuthAccessToken.id).desc())
                )
            ).all()
        return [
            AuthorizedApp(application, account, token.scopes.split(), token.created_at, token.last_used_at)
            for token, application, account in rows
        ]

    async def revoke_app_for_user(self, user_id: int, application_id: int) -> None:
        """Every token this user holds for the app dies at once."""
        async with self.context.sessions() as session:
            await session.execute(
                update(OAuthAccessToken)
                .where(
                    col(OAuthAccessToken.user_id) == user_id,
                    col(OAuthAccessToken.application_id) == application_id,
                    col(OAuthAccessToken.revoked_at).is_(None),
                )
                .values(revoked_at=utcnow())
            )
            await session.commit()


__all__ = [
    "OOB_REDIRECT_URI",
    "SCOPES_SUPPORTED",
    "AuthorizedApp",
    "GrantRefused",
    "IssuedToken",
    "OAuthService",
    "RegisteredApp",
    "TokenHolder",
    "parse_scopes",
    "pkce_s256",
]
