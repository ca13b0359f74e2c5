"""Who is asking: nobody, a remote actor, a person acting as one of their accounts, the server itself.

Every surface builds one and hands it to the services, which decide with it: the web session
now (app/web/session.py), OAuth tokens later (with their scopes, and acting as an organisation
account when the token was granted so). The services, not the surfaces, check what it may do.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, AccountDelegate, Role, User
from app.services.errors import Forbidden

# Mastodon's `follow` scope grants the follow, block and mute parts of `read` and `write`.
_FOLLOW_SCOPES = frozenset(
    {"read:follows", "read:blocks", "read:mutes", "write:follows", "write:blocks", "write:mutes"}
)


@dataclass(frozen=True)
class Viewer:
    """Who is asking a service for something.

    `account` is the account the request acts as: a visitor has none; a staff member their own,
    or the organisation account a token was granted for; a signed fetch the remote actor.
    `acting_ids` are the local accounts this person may act as right now (their own and the
    organisations they post for; only the organisation for an organisation token): they may
    manage those accounts' posts and see what those accounts see.
    """

    account: Account | None = None
    user: User | None = None
    acting_ids: frozenset[int] = frozenset()
    is_admin: bool = False
    # The server itself or its operator (the command line, federation, maintenance): every rule
    # about who may act holds for people, not for the machine they own.
    is_system: bool = False
    # A token's scopes; None for a web session or the command line, which may do everything.
    scopes: frozenset[str] | None = None

    @classmethod
    def nobody(cls) -> Viewer:
        return cls()

    @classmethod
    def system(cls) -> Viewer:
        return cls(is_system=True, is_admin=True)

    @classmethod
    def remote(cls, account: Account | None) -> Viewer:
        """A remote actor that signed its request (None: it could not be identified)."""
        return cls(account=account)

    @property
    def account_id(self) -> int | None:
        return self.account.id if self.account is not None else None

    @property
    def is_person(self) -> bool:
        """A person logged in here (whose posting is rate-limited and whose writes are recorded)."""
        return self.user is not None

    def may_act_as(self, account_id: int) -> bool:
        return self.is_system or account_id in self.acting_ids

    def require_act_as(self, account: Account | int) -> None:
        """Forbidden unless the viewer may act as `account` (an Account, or its id)."""
        account_id = account if isinstance(account, int) else account.id
        if not self.may_act_as(account_id):
            name = "this account" if isinstance(account, int) else f"@{account.username}"
            raise Forbidden(f"you may not act as {name}")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("only administrators may do this")

    def has_scope(self, scope: str) -> bool:
        """Whether a token's scopes cover `scope` (`read` covers `read:statuses`, as on Mastodon)."""
        if self.scopes is None:
            return True
        parent = scope.split(":", 1)[0]
        return (
            scope in self.scopes
            or parent in self.scopes
            or ("follow" in self.scopes and scope in _FOLLOW_SCOPES)
        )

    def require_scope(self, scope: str) -> None:
        if not self.has_scope(scope):
            raise Forbidden("This action is outside the authorized scopes")


async def person_viewer(
    context: AppContext,
    user: User,
    account: Account,
    *,
    acting_as: Account | None = None,
    scopes: frozenset[str] | None = None,
) -> Viewer:
    """The viewer of a logged-in person: `account` is their own, `acting_as` the organisation
    account a token acts as (only one they may post as; Forbidden otherwise)."""
    async with context.sessions() as session:
        granted = (
            await session.scalars(
                select(AccountDelegate.organization_account_id)
                .join(Account, col(Account.id) == col(AccountDelegate.organization_account_id))
                .where(AccountDelegate.user_id == user.id, col(Account.deleted_at).is_(None))
            )
        ).all()
    acting_ids = frozenset({account.id, *granted})
    if acting_as is not None and acting_as.id != account.id:
        if acting_as.id not in acting_ids:
            raise Forbidden(f"you may not act as @{acting_as.username}")
        return Viewer(
            account=acting_as,
            user=user,
            acting_ids=frozenset({acting_as.id}),
            is_admin=user.role == Role.ADMIN,
            scopes=scopes,
        )
    return Viewer(
        account=account, user=user, acting_ids=acting_ids, is_admin=user.role == Role.ADMIN, scopes=scopes
    )


__all__ = ["Viewer", "person_viewer"]
