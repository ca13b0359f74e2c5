"""Signing up (REGISTRATIONS): closed by default; open, an app's client_credentials token creates
an account and gets a usable token; under approval the account waits in Admin → Team, cannot log
in, and its token answers 401 until an administrator approves. The sign-up page follows the same rule."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from app.config import Settings
from app.models import Account, Role, User
from tests.api.account_helpers import bearer
from tests.api.oauth_helpers import register_app
from tests.lab import Instance, Lab
from tests.processes import herold_env, run_herold
from tests.web.helpers import Browser, logged_in, new_client

STRONG = "a sturdy password 2026"


async def app_token(client: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    app = await register_app(client)
    answer = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "scope": "read write follow",
        },
    )
    assert answer.status_code == 200, answer.text
    return app, str(answer.json()["access_token"])


def sign_up_body(username: str, **changes: Any) -> dict[str, Any]:
    return {
        "username": username,
        "email": f"{username}@example.org",
        "password": STRONG,
        "agreement": True,
        "locale": "de",
        **changes,
    }


async def test_closed_by_default(instance: Instance) -> None:
    client = instance.client
    _, token = await app_token(client)
    refused = await client.post("/api/v1/accounts", json=sign_up_body("newbie"), headers=bearer(token))
    assert refused.status_code == 403 and "closed" in refused.json()["error"]
    assert (await client.get("/auth/sign_up")).status_code == 404
    registrations = (await client.get("/api/v2/instance")).json()["registrations"]
    assert registrations["enabled"] is False and registrations["approval_required"] is False


async def test_open_sign_up_through_the_api(lab: Lab) -> None:
    instance = await lab.instance("a.test", registrations="open")
    client = instance.client
    v2 = (await client.get("/api/v2/instance")).json()
    assert v2["registrations"]["enabled"] is True and v2["registrations"]["approval_required"] is False
    assert (await client.get("/api/v1/instance")).json()["registrations"] is True
    _, token = await app_token(client)

    created = await client.post("/api/v1/accounts", json=sign_up_body("newbie"), headers=bearer(token))
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "read write follow"
    assert isinstance(body["created_at"], int)
    me = await client.get("/api/v1/accounts/verify_credentials", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["acct"] == "newbie"
    async with instance.context.sessions() as session:
        user = (await session.scalars(select(User).where(User.email == "newbie@example.org"))).one()
    assert user.locale == "de" and user.role == Role.STAFF and not user.awaiting_approval

    taken = await client.post("/api/v1/accounts", json=sign_up_body("NewBie"), headers=bearer(token))
    assert taken.status_code == 422 and taken.json()["details"]["username"][0]["error"] == "ERR_TAKEN"
    for changes, field in (
        ({"agreement": False}, "agreement"),
        ({"password": "password"}, "password"),
        ({"email": "not-an-address"}, "email"),
        ({"username": "bad name!"}, "username"),
        ({"username": "admin"}, "username"),
    ):
        answer = await client.post(
            "/api/v1/accounts", json={**sign_up_body("other"), **changes}, headers=bearer(token)
        )
        assert answer.status_code == 422, (changes, answer.text)
        assert field in answer.json()["details"] and field in answer.json()["error"]
    # A person's token cannot sign someone else up; no token at all is 401.
    person = await client.post(
        "/api/v1/accounts", json=sign_up_body("third"), headers=bearer(body["access_token"])
    )
    assert person.status_code == 403
    assert (await client.post("/api/v1/accounts", json=sign_up_body("third"))).status_code == 401


async def test_approval_waits_in_admin_team_until_approved(lab: Lab) -> None:
    instance = await lab.instance("a.test", registrations="approval")
    client = instance.client
    assert (await client.get("/api/v2/instance")).json()["registrations"]["approval_required"] is True
    _, token = await app_token(client)
    created = await client.post(
        "/api/v1/accounts",
        json=sign_up_body("hopeful", reason="I write for the newsletter"),
        headers=bearer(token),
    )
    assert created.status_code == 200, created.text
    waiting_token = bearer(created.json()["access_token"])
    assert (await client.get("/api/v1/accounts/verify_credentials", headers=waiting_token)).status_code == 401
    visitor = Browser(new_client(instance))
    await visitor.get("/login")
    refused = await visitor.post("/login", {"username": "hopeful", "password": STRONG})
    assert refused.status_code == 401 and "approval" in refused.text

    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    # Nobody yet: a waiting sign-up is not an account anyone can look up.
    async with instance.context.sessions() as session:
        waiting = (await session.scalars(select(Account).where(Account.username == "hopeful"))).one()
    assert (await client.get(f"/api/v1/accounts/{waiting.id}")).status_code == 404
    assert (await client.get("/api/v1/accounts/lookup", params={"acct": "hopeful"})).status_code == 404
    assert (await client.get("/api/v1/accounts", params={"id[]": [str(waiting.id)]})).json() == []
    team = await admin.get("/admin/staff")
    assert "I write for the newsletter" in team.text and "@hopeful" in team.text
    async with instance.context.sessions() as session:
        user = (await session.scalars(select(User).where(User.email == "hopeful@example.org"))).one()
    approved = await admin.post(f"/admin/sign-ups/{user.id}/approve")
    assert approved.status_code == 303
    assert (await client.get(f"/api/v1/accounts/{waiting.id}")).status_code == 200
    listed = await client.get("/api/v1/accounts", params={"id[]": [str(waiting.id)]})
    assert [account["acct"] for account in listed.json()] == ["hopeful"]
    assert (await client.get("/api/v1/accounts/verify_credentials", headers=waiting_token)).status_code == 200
    assert (await visitor.post("/login", {"username": "hopeful", "password": STRONG})).status_code == 303

    # A second sign-up, rejected: it is gone.
    await client.post("/api/v1/accounts", json=sign_up_body("spammer"), headers=bearer(token))
    # Administrators hear of each sign-up (Mastodon's admin.sign_up).
    notified = await admin.get("/notifications")
    assert "signed up" in notified.text and "spammer" in notified.text
    async with instance.context.sessions() as session:
        spammer = (await session.scalars(select(User).where(User.email == "spammer@example.org"))).one()
    assert (await admin.post(f"/admin/sign-ups/{spammer.id}/reject")).status_code == 303
    async with instance.context.sessions() as session:
        assert (await session.scalars(select(Account).where(Account.username == "spammer"))).first() is None
    assert (await admin.post(f"/admin/sign-ups/{spammer.id}/approve")).status_code == 404
    await admin.aclose()
    await visitor.aclose()


async def test_approve_from_the_command_line(lab: Lab) -> None:
    instance = await lab.instance("a.test", registrations="approval")
    client = instance.client
    _, token = await app_token(client)
    for name in ("quiet", "noisy"):
        answer = await client.post("/api/v1/accounts", json=sign_up_body(name), headers=bearer(token))
        assert answer.status_code == 200, answer.text
    env = herold_env(instance.settings.data_dir, instance.settings.database_url, LOCAL_DOMAIN="a.test")
    approved = run_herold(["accounts", "approve", "quiet"], env)
    assert approved.returncode == 0 and "@quiet may log in now" in approved.stdout, approved.stderr
    rejected = run_herold(["accounts", "approve", "@noisy", "--reject"], env)
    assert rejected.returncode == 0, rejected.stderr
    async with instance.context.sessions() as session:
        rows = (
            await session.execute(
                select(User, Account).join(Account, col(Account.id) == col(User.account_id))
            )
        ).all()
    users = {account.username: user for user, account in rows}
    assert not users["quiet"].awaiting_approval and "noisy" not in users


async def test_sign_up_page(lab: Lab) -> None:
    instance = await lab.instance("a.test", registrations="open")
    browser = Browser(new_client(instance))
    login_page = await browser.get("/login")
    assert "/auth/sign_up" in login_page.text
    page = await browser.get("/auth/sign_up")
    assert page.status_code == 200 and 'name="agreement"' in page.text
    form = {"username": "walkin", "email": "walkin@example.org", "password": STRONG}
    missing_agreement = await browser.post("/auth/sign_up", form)
    assert missing_agreement.status_code == 400 and "agreement" in missing_agreement.text
    done = await browser.post("/auth/sign_up", {**form, "agreement": "on"})
    assert done.status_code == 303 and done.headers["location"].startswith("/login")
    await browser.login("walkin", STRONG)
    await browser.aclose()


def test_registrations_setting(tmp_path: Any) -> None:
    base = {"_env_file": None, "data_dir": tmp_path, "secret_key": "x" * 40}
    assert Settings(**base).registrations == "closed"
    assert Settings(**base, registrations="Approval").registrations == "approval"
    legacy = Settings(**base, open_registrations=True)
    assert legacy.registrations == "open" and legacy.open_registrations is True
    assert Settings(**base, registrations="approval").open_registrations is True
    with pytest.raises(ValueError):
        Settings(**base, registrations="sometimes")
