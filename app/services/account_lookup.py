"""Finding an account the viewer asked for by id or by `acct`, as the client API names them.

Deleted and suspended accounts are not found, whoever asks (their profile pages answer 410/404 too),
nor are sign-ups still waiting for an administrator's approval.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, exists
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, User
from app.services.errors import NotFound
from app.services.viewer import Viewer


def _waiting_sign_up(account: Any = Account) -> ColumnElement[bool]:
    """The account is a sign-up still waiting for approval: nobody yet, as on Mastodon."""
    return exists().where(col(User.account_id) == account.id, col(User.awaiting_approval).is_(True))


async def _shown(session: AsyncSession, account: Account | None) -> Account:
    if account is None or account.deleted_at is not None or account.suspended_at is not None:
        raise NotFound("Record not found")
    if account.domain is None and await session.scalar(
        select(_waiting_sign_up()).where(col(Account.id) == account.id)
    ):
        raise NotFound("Record not found")
    return account


async def account_by_id(context: AppContext, viewer: Viewer, account_id: int) -> Account:
    del viewer  # every viewer sees the same accounts; blocks hide posts, not the profile
    async with context.sessions() as session:
        return await _shown(session, await session.get(Account, account_id))


async def accounts_by_ids(context: AppContext, viewer: Viewer, account_ids: list[int]) -> list[Account]:
    """The shown accounts among `account_ids`, in the order asked."""
    del viewer
    if not account_ids:
        return []
    async with context.sessions() as session:
        found = {
            account.id: account
            for account in (
                await session.scalars(
                    select(Account).where(
                        col(Account.id).in_(account_ids),
                        col(Account.deleted_at).is_(None),
                        col(Account.suspended_at).is_(None),
                        ~_waiting_sign_up(),
                    )
                )
            ).all()
        }
    return [found[account_id] for account_id in dict.fromkeys(account_ids) if account_id in found]


async def account_by_acct(context: AppContext, viewer: Viewer, acct: str) -> Account:
    """`name` or `name@domain` (our own domains count as local); only accounts known here."""
    del viewer
    name, _, domain = acct.strip().removeprefix("@").partition("@")
    settings = context.settings
    local = not domain or domain.lower() in (settings.local_domain, settings.web_domain)
    query = select(Account).where(Account.username == (name.lower() if local else name))
    query = query.where(col(Account.domain).is_(None) if local else col(Account.domain) == domain.lower())
    async with context.sessions() as session:
        return await _shown(session, (await session.scalars(query.limit(1))).first())


__all__ = ["account_by_acct", "account_by_id", "accounts_by_ids"]
