"""The organisation's team: staff logins, their roles, and who may post as an organisation account.

Only administrators change it (each change names who makes it: `by`), and every change is
written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, AccountDelegate, ActorType, AuditLogEntry, Role, User, WebSession
from app.models.base import utcnow
from app.services.accounts import INSTANCE_ACTOR_USERNAME, AccountError, AccountService, CreatedAccount
from app.services.errors import Forbidden


class StaffError(AccountError):
    """An administrative change that cannot be made; the message is meant for the administrator."""


@dataclass(frozen=True)
class StaffMember:
    user: User
    account: Account
    # Organisation accounts this person may post as.
    delegations: list[Account] = field(default_factory=list)

    @property
    def is_admin(self) -> bool:
        return self.user.role == Role.ADMIN

    @property
    def is_organization(self) -> bool:
        return self.account.actor_type == ActorType.ORGANIZATION


@dataclass(frozen=True)
class OrganizationAccount:
    account: Account
    # Staff members allowed to post as it.
    delegates: list[tuple[User, Account]]


class StaffService:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def members(self) -> list[StaffMember]:
        """Every local login with its account and delegations, by user name."""
        async with self.context.sessions() as session:
            rows = (
                await session.execute(
                    select(User, Account)
                    .join(Account, col(Account.id) == col(User.account_id))
                    .where(col(Account.domain).is_(None), Account.username != INSTANCE_ACTOR_USERNAME)
                    .order_by(col(Account.username))
                )
            ).all()
            grants = (
                await session.execute(
                    select(AccountDelegate.user_id, Account)
                    .join(Account, col(Account.id) == col(AccountDelegate.organization_account_id))
                    .order_by(col(Account.username))
                )
            ).all()
        by_user: dict[int, list[Account]] = {}
        for user_id, account in grants:
            by_user.setdefault(user_id, []).append(account)
        return [StaffMember(user, account, by_user.get(user.id, [])) for user, account in rows]

    async def member(self, user_id: int) -> StaffMember:
        for member in await self.members():
            if member.user.id == user_id:
                return member
        raise StaffError("there is no such staff member")

    async def organizations(self) -> list[OrganizationAccount]:
        async with self.context.sessions() as session:
            accounts = (
                await session.scalars(
                    select(Account)
                    .where(
                        col(Account.domain).is_(None),
                        Account.actor_type == ActorType.ORGANIZATION,
                        col(Account.deleted_at).is_(None),
                    )
                    .order_by(col(Account.username))
                )
            ).all()
            grants = (
                await session.execute(
                    select(AccountDelegate.organization_account_id, User, Account)
                    .join(User, col(User.id) == col(AccountDelegate.user_id))
                    .join(Account, col(Account.id) == col(User.account_id))
                    .order_by(col(Account.username))
                )
            ).all()
        delegates: dict[int, list[tuple[User, Account]]] = {}
        for organization_id, user, account in grants:
            delegates.setdefault(organization_id, []).append((user, account))
        return [OrganizationAccount(account, delegates.get(account.id, [])) for account in accounts]

    async def create_member(
        self,
        username: str,
        *,
        by: User,
        role: Role = Role.STAFF,
        organization: bool = False,
        display_name: str | None = None,
        email: str | None = None,
    ) -> CreatedAccount:
        """A new login with a random password nobody is told (use an invite link), or an
        organisation account, which has no password at all: staff post as it."""
        _require_admin(by)
        if email is not None and email and ("@" not in email or len(email) > 320):
            raise StaffError(f"{email!r} is not an e-mail address")
        created = await AccountService(self.context).create_local_account(
            username,
            organization=organization,
            role=Role.STAFF if organization else role,
            display_name=display_name or None,
            email=email or None,
        )
        await self._audit(
            by,
            "staff.create",
            created.account.uri,
            {"role": created.user.role, "organization": organization},
        )
        return created

    async def set_role(self, user_id: int, role: Role, *, by: User) -> None:
        _require_admin(by)
        async with self.context.sessions() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise StaffError("there is no such staff member")
            if user.role == role:
                return
            if user.role == Role.ADMIN and await self._active_admins(session) <= 1:
                raise StaffError("this is the last administrator; make someone else an administrator first")
            user.role = role
            session.add(user)
            await session.commit()
        await self._audit(by, "staff.role", str(user_id), {"role": role})

    async def set_disabled(self, user_id: int, disabled: bool, *, by: User) -> None:
        _require_admin(by)
        if user_id == by.id and disabled:
            raise StaffError("you cannot disable your own login")
        async with self.context.sessions() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise StaffError("there is no such staff member")
            if disabled and user.role == Role.ADMIN and await self._active_admins(session) <= 1:
                raise StaffError("this is the last administrator; it cannot be disabled")
            user.disabled_at = utcnow() if disabled else None
            session.add(user)
            if disabled:
                await session.execute(delete(WebSession).where(col(WebSession.user_id) == user_id))
            await session.commit()
        await self._audit(by, "staff.disable" if disabled else "staff.enable", str(user_id), {})

    async def grant_delegate(self, organization_account_id: int, user_id: int, *, by: User | None) -> None:
        """`by` None: the operator on the command line (recorded in the audit log without a name)."""
        _require_admin(by)
        async with self.context.sessions() as session:
            organization = await session.get(Account, organization_account_id)
            if (
                organization is None
                or organization.domain is not None
                or organization.actor_type != ActorType.ORGANIZATION
            ):
                raise StaffError("that is not an organisation account")
            user = await session.get(User, user_id)
            if user is None:
                raise StaffError("there is no such staff member")
            if user.account_id == organization_account_id:
                raise StaffError("an account always posts as itself")
            exists = await session.scalar(
                select(AccountDelegate.id).where(
                    AccountDelegate.organization_account_id == organization_account_id,
                    AccountDelegate.user_id == user_id,
                )
            )
            if exists:
                return
            session.add(
                AccountDelegate(
                    organization_account_id=organization_account_id,
                    user_id=user_id,
                    granted_by_user_id=by.id if by is not None else None,
                )
            )
            try:
                await session.commit()
            except IntegrityError:  # granted twice at the same moment
                return
        await self._audit(by, "delegate.grant", organization.uri, {"user_id": user_id})

    async def revoke_delegate(self, organization_account_id: int, user_id: int, *, by: User | None) -> None:
        _require_admin(by)
        async with self.context.sessions() as session:
            await session.execute(
                delete(AccountDelegate).where(
                    col(AccountDelegate.organization_account_id) == organization_account_id,
                    col(AccountDelegate.user_id) == user_id,
                )
            )
            await session.commit()
        await self._audit(by, "delegate.revoke", str(organization_account_id), {"user_id": user_id})

    async def postable_accounts(self, user: User) -> list[Account]:
        """The accounts `user` may publish as: their own first, then organisations they were granted."""
        async with self.context.sessions() as session:
            own = await session.get(Account, user.account_id)
            granted = (
                await session.scalars(
                    select(Account)
                    .join(AccountDelegate, col(AccountDelegate.organization_account_id) == col(Account.id))
                    .where(AccountDelegate.user_id == user.id, col(Account.deleted_at).is_(None))
                    .order_by(col(Account.username))
                )
            ).all()
        return ([own] if own is not None else []) + list(granted)

    async def can_act_as(self, user: User, account_id: int) -> bool:
        """Whether `user` may post as `account_id` (the viewer's `may_act_as` holds the same answer,
        loaded once per request by app.services.viewer.person_viewer)."""
        if user.account_id == account_id:
            return True
        async with self.context.sessions() as session:
            return bool(
                await session.scalar(
                    select(AccountDelegate.id).where(
                        AccountDelegate.user_id == user.id,
                        AccountDelegate.organization_account_id == account_id,
                    )
                )
            )

    async def authors(self, user_ids: set[int]) -> dict[int, Account]:
        """The accounts of the staff members who wrote posts, by user id (for the 'written by' line)."""
        if not user_ids:
            return {}
        async with self.context.sessions() as session:
            rows = await session.execute(
                select(User.id, Account)
                .join(Account, col(Account.id) == col(User.account_id))
                .where(col(User.id).in_(user_ids))
            )
            return {user_id: account for user_id, account in rows.all()}

    async def audit_log(self, limit: int = 50) -> list[AuditLogEntry]:
        async with self.context.sessions() as session:
            rows = await session.scalars(
                select(AuditLogEntry).order_by(col(AuditLogEntry.created_at).desc()).limit(limit)
            )
            return list(rows.all())

    async def _active_admins(self, session: Any) -> int:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(User)
                .where(User.role == Role.ADMIN, col(User.disabled_at).is_(None))
            )
            or 0
        )

    async def _audit(self, by: User | None, action: str, target: str, data: dict[str, Any]) -> None:
        async with self.context.sessions() as session:
            session.add(
                AuditLogEntry(
                    user_id=by.id if by is not None else None, action=action, target=target[:2048], data=data
                )
            )
            await session.commit()


def _require_admin(by: User | None) -> None:
    """The team is changed by administrators only (or the operator: `by` None): every change names who makes it."""
    if by is not None and by.role != Role.ADMIN:
        raise Forbidden("only administrators may change the team")
