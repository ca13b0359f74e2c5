"""Signing up (REGISTRATIONS=approval or open; closed by default, where staff are invited).

One rule for the sign-up page and `POST /api/v1/accounts`: the mode, the agreement, the
password rule every login follows, an address's sign-ups per half hour. Under approval the new
login waits — it cannot log in and its app token answers 401 — until an administrator approves
it in Admin → Team; a rejected sign-up is deleted (it never posted or federated anything).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete
from sqlmodel import col, select

from app.context import AppContext
from app.i18n import supported
from app.models import Account, AuditLogEntry, NotificationType, Role, User
from app.services.accounts import INSTANCE_ACTOR_USERNAME, AccountService, CreatedAccount
from app.services.errors import Forbidden, Invalid, NotFound, RateLimited
from app.services.notifications import notify
from app.services.passwords import password_problem

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_EMAIL = 320
MAX_REASON = 1000
# Names people would take for the server's voice.
RESERVED_NAMES = frozenset({INSTANCE_ACTOR_USERNAME, "admin", "administrator", "root", "support", "security"})


class RegistrationError(Invalid):
    """A sign-up that cannot be accepted; the message names the field."""


class RegistrationsClosed(Forbidden):
    pass


@dataclass(frozen=True)
class SignUp:
    username: str
    email: str
    password: str
    agreement: bool
    locale: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class PendingSignUp:
    user: User
    account: Account


class RegistrationService:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    @property
    def mode(self) -> str:
        return self.context.settings.registrations

    @property
    def needs_approval(self) -> bool:
        return self.mode == "approval"

    async def sign_up(self, form: SignUp, *, address: str) -> CreatedAccount:
        if self.mode == "closed":
            raise RegistrationsClosed("registrations are closed on this server; ask its administrators")
        if not form.agreement:
            raise RegistrationError("agreement: the server's rules must be accepted")
        email = form.email.strip()
        if len(email) > MAX_EMAIL or not EMAIL_RE.match(email):
            raise RegistrationError("email: not an e-mail address")
        problem = password_problem(form.password)
        if problem is not None:
            raise RegistrationError(f"password: {problem}")
        reason = (form.reason or "").strip()
        if len(reason) > MAX_REASON:
            raise RegistrationError(f"reason: at most {MAX_REASON} characters")
        accounts = AccountService(self.context)
        try:
            name = accounts.normalize_username(form.username)
        except Invalid as error:
            raise RegistrationError(f"username: {error}") from None
        if name in RESERVED_NAMES:
            raise RegistrationError(f"username: {name!r} is reserved")
        decision = self.context.rate_limits.sign_ups_per_address.hit(address)
        if not decision.allowed:
            raise RateLimited(
                "too many sign-ups from this address; try again later", headers=decision.headers()
            )
        try:
            created = await accounts.create_local_account(
                name,
                password=form.password,
                email=email,
                awaiting_approval=self.needs_approval,
                sign_up_reason=reason or None,
                locale=supported(form.locale) if form.locale else None,
            )
        except Invalid as error:
            raise RegistrationError(f"username: {error}") from None
        async with self.context.sessions() as session:
            session.add(
                AuditLogEntry(
                    user_id=created.user.id,
                    action="registration.create",
                    target=created.account.uri,
                    data={"awaiting_approval": self.needs_approval},
                )
            )
            # Administrators hear of it (Mastodon's admin.sign_up), so a waiting sign-up is seen.
            admins = await session.scalars(
                select(Account)
                .join(User, col(User.account_id) == col(Account.id))
                .where(col(User.role) == Role.ADMIN, col(User.disabled_at).is_(None))
            )
            for admin in admins.all():
                await notify(
                    session, account=admin, from_account=created.account, kind=NotificationType.SIGN_UP
                )
            await session.commit()
        return created

    async def pending(self) -> list[PendingSignUp]:
        """Sign-ups waiting for an administrator, oldest first."""
        async with self.context.sessions() as session:
            rows = (
                await session.execute(
                    select(User, Account)
                    .join(Account, col(Account.id) == col(User.account_id))
                    .where(col(User.awaiting_approval).is_(True))
                    .order_by(col(User.created_at))
                )
            ).all()
        return [PendingSignUp(user, account) for user, account in rows]

    async def approve(self, user_id: int, *, by: User) -> None:
        _require_admin(by)
        async with self.context.sessions() as session:
            user = await session.get(User, user_id)
            if user is None or not user.awaiting_approval:
                raise NotFound("there is no such sign-up waiting")
            user.awaiting_approval = False
            session.add(user)
            session.add(
                AuditLogEntry(user_id=by.id, action="registration.approve", target=str(user_id), data={})
            )
            await session.commit()

    async def reject(self, user_id: int, *, by: User) -> None:
        """Delete the waiting sign-up: its account never posted, followed or federated anything."""
        _require_admin(by)
        async with self.context.sessions() as session:
            user = await session.get(User, user_id)
            if user is None or not user.awaiting_approval:
                raise NotFound("there is no such sign-up waiting")
            account_id = user.account_id
            await session.execute(delete(User).where(col(User.id) == user_id))
            await session.execute(delete(Account).where(col(Account.id) == account_id))
            session.add(
                AuditLogEntry(user_id=by.id, action="registration.reject", target=str(user_id), data={})
            )
            await session.commit()


def _require_admin(by: User) -> None:
    if by.role != Role.ADMIN:
        raise Forbidden("only administrators approve sign-ups")


__all__ = [
    "PendingSignUp",
    "RegistrationError",
    "RegistrationService",
    "RegistrationsClosed",
    "SignUp",
]
