"""Tokens made without the authorize page (as `herold tokens create` makes them), for tests that
are about the endpoints rather than about logging in."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import select

from app.models import Account, Role, User
from app.services.oauth import OAuthService
from tests.lab import Instance
from tests.web.helpers import make_user


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def person(
    instance: Instance, username: str, *, scopes: str = "read write follow", role: Role = Role.STAFF
) -> tuple[Account, dict[str, str]]:
    """A new staff member and the Authorization header of a token acting as them."""
    user, account = await make_user(instance, username, role=role)
    token = await OAuthService(instance.context).issue_personal_token(
        user, scopes=scopes, app_name="tests", acting_as=account
    )
    return account, bearer(token)


async def another_token(instance: Instance, account: Account, *, scopes: str) -> dict[str, str]:
    async with instance.context.sessions() as session:
        user = (await session.scalars(select(User).where(User.account_id == account.id))).one()
    token = await OAuthService(instance.context).issue_personal_token(
        user, scopes=scopes, app_name="tests", acting_as=account
    )
    return bearer(token)


async def post(client: httpx.AsyncClient, auth: dict[str, str], text: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/statuses", json={"status": text, **extra}, headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
