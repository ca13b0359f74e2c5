"""Logging in to the web UI: password checks, rate limiting, browser sessions and invite links.

The session cookie carries a random token; only its SHA-256 is stored, so a leaked database
does not hand out logins. Each session has its own CSRF token for the forms it submits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, ActorType, User, WebSession
from app.models.base import utcnow
from app.services.accounts import ORGANIZATION_HAS_NO_LOGIN, AccountError
from app.services.passwords import MAX_PASSWORD_LENGTH, hash_password, password_problem, verify_password
from app.services.rate_limits import LoginRateLimiter, RateDecision

SESSION_LIFETIME = timedelta(days=30)
# A session used after half its lifetime is extended, so people who use Herold daily stay logged in.
SESSION_RENEW_AFTER = SESSION_LIFETIME / 2
INVITE_LIFETIME = timedelta(days=7)


class LoginError(Exception):
    """Wrong name or password, or a login that may not be used; the message is safe to show."""

    def __init__(self, message: str, *, reason: str = "wrong") -> None:
        super().__init__(message)
        # "wrong", "disabled" or "organization": what each surface words in its own language.
        self.reason = reason


class RateLimited(Exception):
    def __init__(self, decision: RateDecision) -> None:
        # Whole seconds until an attempt is counted again; each surface words it for its reader.
        self.retry_after = max(1, math.ceil(decision.reset_after))
        super().__init__(f"too many failed log-in attempts; try again in {self.retry_after} seconds")
        # The limit that was hit, for the X-RateLimit-* headers every other limit sends too.
        self.decision = decision


class InviteError(Exception):
    """An invite link that is unknown, used or expired."""


@dataclass(frozen=True)
class SignedIn:
    """A live browser session: who is logged in and the CSRF token their forms carry."""

    session: WebSession
    user: User
    account: Account
    # The session's lifetime was just extended: the cookie should be sent again with the new expiry.
    renewed: bool = False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    @property
    def limiter(self) -> LoginRateLimiter:
        # The instance's one limiter, so every way of logging in (web form, OAuth, API) shares it.
        return self.context.rate_limits.logins

    async def authenticate(self, username: str, password: str, *, ip: str) -> User:
        """The user behind `username` if `password` is theirs; raises LoginError or RateLimited."""
        name = (
            username.strip().removeprefix("@").lower().removesuffix(f"@{self.context.settings.local_domain}")
        )
        refusal = self.limiter.refusal(ip, name)
        if refusal is not None:
            raise RateLimited(refusal)
        user = account = None
        if name and len(password) <= MAX_PASSWORD_LENGTH:
            async with self.context.sessions() as session:
                row = (
                    await session.execute(
                        select(User, Account)
                        .join(Account, col(Account.id) == col(User.account_id))
                        .where(Account.username == name, col(Account.domain).is_(None))
                    )
                ).first()
                if row is not None:
                    user, account = row
        # Verify even for unknown names, so timing does not tell which names exist.
        stored_hash = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
        valid = await verify_password(stored_hash, password) if password else False
        if account is not None and account.actor_type == ActorType.ORGANIZATION:
            # Nobody logs in as the organisation, whatever password an older version stored:
            # staff post as it from their own logins, so each post records who wrote it. Counted
            # as a failure: each try costs a password hash, and no address may ask for them unthrottled.
            self.limiter.record_failure(ip, name)
            raise LoginError(
                "organisation accounts cannot log in; log in as yourself and post as the organisation",
                reason="organization",
            )
        if user is None or not valid:
            self.limiter.record_failure(ip, name)
            raise LoginError("wrong user name or password")
        if user.disabled_at is not None:
            raise LoginError("this login has been disabled by an administrator", reason="disabled")
        if user.awaiting_approval:
            raise LoginError("your sign-up is waiting for an administrator's approval", reason="pending")
        self.limiter.record_success(ip, name)
        return user

    async def start_session(self, user: User, *, user_agent: str = "") -> tuple[str, WebSession]:
        """A new session for `user`; returns the cookie token (never stored) and the session row."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        web_session = WebSession(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
            user_agent=user_agent[:512],
        )
        async with self.context.sessions() as session:
            session.add(web_session)
            db_user = await session.get(User, user.id)
            if db_user is not None:
                db_user.last_login_at = now
                session.add(db_user)
            await session.commit()
            await session.refresh(web_session)
        return token, web_session

    async def session_for_token(self, token: str) -> SignedIn | None:
        if not token or len(token) > 200:
            return None
        now = utcnow()
        async with self.context.sessions() as session:
            row = (
                await session.execute(
                    select(WebSession, User, Account)
                    .join(User, col(User.id) == col(WebSession.user_id))
                    .join(Account, col(Account.id) == col(User.account_id))
                    .where(WebSession.token_hash == token_hash(token), col(WebSession.expires_at) > now)
                )
            ).first()
            if row is None:
                return None
            web_session, user, account = row
            if (
                user.disabled_at is not None
                or account.suspended_at is not None
                or account.deleted_at
                # A session an older version let an organisation account open ends now.
                or account.actor_type == ActorType.ORGANIZATION
            ):
                return None
            renewed = web_session.expires_at - now < SESSION_RENEW_AFTER
            if renewed:
                web_session.expires_at = now + SESSION_LIFETIME
                session.add(web_session)
                await session.commit()
        return SignedIn(session=web_session, user=user, account=account, renewed=renewed)

    async def end_session(self, token: str) -> None:
        async with self.context.sessions() as session:
            await session.execute(delete(WebSession).where(col(WebSession.token_hash) == token_hash(token)))
            await session.commit()

    async def end_all_sessions(self, user_id: int, *, except_session_id: int | None = None) -> None:
        statement = delete(WebSession).where(col(WebSession.user_id) == user_id)
        if except_session_id is not None:
            statement = statement.where(col(WebSession.id) != except_session_id)
        async with self.context.sessions() as session:
            await session.execute(statement)
            await session.commit()

    async def change_password(
        self, user: User, current: str, new: str, *, keep_session_id: int | None = None
    ) -> None:
        if not await verify_password(user.password_hash, current):
            raise AccountError("the current password is wrong")
        await self._set_password(user.id, new)
        await self.end_all_sessions(user.id, except_session_id=keep_session_id)

    async def _set_password(self, user_id: int, new: str) -> None:
        problem = password_problem(new)
        if problem is not None:
            raise AccountError(problem)
        password_hash = await hash_password(new)
        async with self.context.sessions() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise AccountError("this login no longer exists")
            user.password_hash = password_hash
            session.add(user)
            await session.commit()

    # Invite links: stateless and single-use. The signature covers the current password hash, so
    # the link stops working as soon as a password is set with it (or by any other means).

    def invite_token(self, user: User, *, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + INVITE_LIFETIME.total_seconds())
        payload = f"{user.id}.{expires}"
        return f"{payload}.{self._invite_signature(payload, user.password_hash)}"

    def invite_url(self, user: User) -> str:
        return f"{self.context.urls.base}/invite/{self.invite_token(user)}"

    def _invite_signature(self, payload: str, password_hash: str) -> str:
        key = hashlib.sha256(f"herold-invite:{self.context.settings.secret_key}".encode()).digest()
        digest = hmac.new(key, f"{payload}:{password_hash}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")

    async def user_for_invite(self, token: str) -> tuple[User, Account]:
        parts = token.split(".")
        if (
            len(token) > 200
            or len(parts) != 3
            or not all(part.isascii() and part.isdigit() and len(part) <= 18 for part in parts[:2])
        ):
            raise InviteError("this invite link is not valid")
        user_id, expires = int(parts[0]), int(parts[1])
        if expires < time.time():
            raise InviteError("this invite link has expired; ask an administrator for a new one")
        async with self.context.sessions() as session:
            row = (
                await session.execute(
                    select(User, Account)
                    .join(Account, col(Account.id) == col(User.account_id))
                    .where(col(User.id) == user_id)
                )
            ).first()
        if row is None:
            raise InviteError("this invite link is not valid")
        user, account = row
        if account.actor_type == ActorType.ORGANIZATION:
            raise InviteError(ORGANIZATION_HAS_NO_LOGIN)
        expected = self._invite_signature(f"{parts[0]}.{parts[1]}", user.password_hash)
        if not hmac.compare_digest(expected, parts[2]):
            raise InviteError("this invite link has already been used or is not valid")
        if user.disabled_at is not None:
            raise InviteError("this login has been disabled by an administrator")
        return user, account

    async def accept_invite(self, token: str, password: str) -> User:
        user, _account = await self.user_for_invite(token)
        await self._set_password(user.id, password)
        await self.end_all_sessions(user.id)
        async with self.context.sessions() as session:
            fresh = await session.get(User, user.id)
        assert fresh is not None
        return fresh


# A valid argon2 hash of a random password, so a log-in for an unknown name costs as much as a real one.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG7yr1YRJMfgw"
)
