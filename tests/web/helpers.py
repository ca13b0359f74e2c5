"""Helpers for driving the HTML pages with an HTTP client: log in, read CSRF tokens, post forms."""

from __future__ import annotations

import re
from typing import Any

import httpx

from app.models import Account, Role, User
from app.services.accounts import AccountService
from tests.lab import Instance

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
PASSWORD = "correct horse battery"
_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF_RE.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


async def make_user(
    instance: Instance, username: str, *, role: Role = Role.STAFF, organization: bool = False
) -> tuple[User, Account]:
    created = await AccountService(instance.context).create_local_account(
        username, role=role, organization=organization, password=None if organization else PASSWORD
    )
    return created.user, created.account


def new_client(instance: Instance, *, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """Another browser: its own cookie jar, connecting from `address`."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=instance.app, client=(address, 123)),
        base_url=instance.base_url,
        headers=BROWSER,
    )


class Browser:
    """A logged-in (or anonymous) client that keeps the CSRF token of its session."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.csrf = ""

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.get(path, **kwargs)
        match = _CSRF_RE.search(response.text)
        if match:
            self.csrf = match.group(1)
        return response

    async def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        if not self.csrf:
            await self.get("/login")
        form = {"csrf_token": self.csrf, **(data or {})}
        return await self.client.post(path, data=form, **kwargs)

    async def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        await self.get("/login")
        response = await self.post("/login", {"username": username, "password": password})
        assert response.status_code == 303, response.text
        await self.get("/home")
        return response

    async def aclose(self) -> None:
        await self.client.aclose()


async def logged_in(instance: Instance, username: str, *, role: Role = Role.STAFF) -> Browser:
    await make_user(instance, username, role=role)
    browser = Browser(new_client(instance))
    await browser.login(username)
    return browser
