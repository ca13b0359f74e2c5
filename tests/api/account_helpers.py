"""Tokens for the account endpoints' tests without walking the authorize page (the OAuth tests
walk it): a staff member made here, and a personal token as `herold tokens create` makes one."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import select

from app.models import Account, User
from app.services.oauth import OAuthService
from tests.lab import Instance
from tests.web.helpers import make_user


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def token_of(
    instance: Instance, account: Account, *, scopes: str = "read write follow"
) -> dict[str, str]:
    async with instance.context.sessions() as session:
        user = (await session.scalars(select(User).where(User.account_id == account.id))).one()
    token = await OAuthService(instance.context).issue_personal_token(
        user, scopes=scopes, app_name="test app", acting_as=account
    )
    return bearer(token)


async def api_user(
    instance: Instance, username: str, *, scopes: str = "read write follow"
) -> tuple[Account, dict[str, str]]:
    _, account = await make_user(instance, username)
    return account, await token_of(instance, account, scopes=scopes)


async def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


__all__ = ["api_user", "bearer", "ok", "token_of"]
