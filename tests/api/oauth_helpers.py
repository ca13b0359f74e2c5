"""Driving the OAuth code flow as an app and a browser do: register, authorize (the form submitted
with the session cookie and CSRF token), exchange the code with its PKCE verifier."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from app.services.oauth import pkce_s256
from tests.web.helpers import Browser

REDIRECT = "oauth2redirect://com.keylesspalace.tusky/"


async def register_app(
    client: httpx.AsyncClient, *, scopes: str = "read write follow push", redirect_uri: str = REDIRECT
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/apps", json={"client_name": "Tusky", "redirect_uris": [redirect_uri], "scopes": scopes}
    )
    assert response.status_code == 200, response.text
    app: dict[str, Any] = response.json()
    return app


async def authorize(
    browser: Browser,
    app: dict[str, Any],
    *,
    scope: str = "read write follow",
    account_id: int | None = None,
    verifier: str | None = None,
    redirect_uri: str = REDIRECT,
) -> str:
    """The code the redirect carries after the person presses Authorize."""
    query: dict[str, str] = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": "xyz",
    }
    if verifier is not None:
        query |= {"code_challenge": pkce_s256(verifier), "code_challenge_method": "S256"}
    page = await browser.get("/oauth/authorize", params=query)
    assert page.status_code == 200, page.text
    form = dict(query, decision="authorize")
    if account_id is not None:
        form["account_id"] = str(account_id)
    answer = await browser.post("/oauth/authorize", form)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(redirect_uri)
    values = parse_qs(urlsplit(location).query)
    assert values["state"] == ["xyz"]
    return values["code"][0]


async def exchange(
    client: httpx.AsyncClient, app: dict[str, Any], code: str, *, verifier: str | None = None
) -> httpx.Response:
    body = {
        "grant_type": "authorization_code",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "redirect_uri": REDIRECT,
        "code": code,
    }
    if verifier is not None:
        body["code_verifier"] = verifier
    return await client.post("/oauth/token", data=body)


async def user_token(client: httpx.AsyncClient, browser: Browser, **kwargs: Any) -> str:
    app = await register_app(client)
    verifier = secrets.token_urlsafe(48)
    code = await authorize(browser, app, verifier=verifier, **kwargs)
    response = await exchange(client, app, code, verifier=verifier)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
