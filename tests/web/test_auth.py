"""Logging in and out: sessions, cookies, CSRF, rate limiting, invites and who may open what."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlmodel import col, select

from app.models import Account, Role, User, WebSession
from app.models.base import utcnow
from app.services.auth import AuthService, LoginRateLimiter, RateLimited
from tests.lab import Instance, Lab
from tests.web.helpers import PASSWORD, Browser, logged_in, make_user, new_client

STAFF_PAGES = [
    "/home",
    "/local",
    "/compose",
    "/notifications",
    "/search",
    "/settings/profile",
    "/settings/account",
]
ADMIN_PAGES = ["/admin/staff", "/admin/instance", "/admin/federation"]


async def test_login_sets_a_hashed_session_in_an_httponly_lax_cookie(instance: Instance) -> None:
    await make_user(instance, "alice")
    browser = Browser(new_client(instance))
    form = await browser.get("/login?next=/settings/profile")
    assert form.status_code == 200
    assert 'autocomplete="current-password"' in form.text
    response = await browser.post(
        "/login", {"username": "@Alice", "password": PASSWORD, "next": "/settings/profile"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/settings/profile"
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and "herold_session=" in value
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http in the lab
    token = cookie.split("herold_session=", 1)[1].split(";", 1)[0]
    async with instance.context.sessions() as session:
        stored = (await session.scalars(select(WebSession))).one()
    # Only the hash is stored: the database cannot hand out logins.
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (stored.token_hash, stored.csrf_token)
    page = await browser.get("/settings/profile")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "private, no-store"


async def test_session_cookie_is_secure_and_host_prefixed_under_https(lab: Lab) -> None:
    instance = await lab.instance("secure.test", https=True)
    await make_user(instance, "alice")
    browser = Browser(new_client(instance))
    await browser.get("/login")
    response = await browser.post("/login", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 303
    cookie = next(
        value for name, value in response.headers.multi_items() if "__Host-herold_session=" in value
    )
    assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie


async def test_wrong_password_and_unknown_name_answer_alike(instance: Instance) -> None:
    await make_user(instance, "alice")
    browser = Browser(new_client(instance))
    await browser.get("/login")
    wrong = await browser.post("/login", {"username": "alice", "password": "not it at all"})
    unknown = await browser.post("/login", {"username": "nobody", "password": "not it at all"})
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong user name or password." in wrong.text and "Wrong user name or password." in unknown.text
    assert "set-cookie" not in {name for name, _ in wrong.headers.multi_items() if "herold_session" in _}


async def test_logout_ends_the_session_and_needs_the_csrf_token(instance: Instance) -> None:
    browser = await logged_in(instance, "alice")
    refused = await browser.client.post("/logout", data={})
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    assert (await browser.get("/home")).status_code == 200
    out = await browser.post("/logout")
    assert out.status_code == 303
    assert out.headers["location"] == "/login?notice=logged_out"
    async with instance.context.sessions() as session:
        assert (await session.scalars(select(WebSession))).all() == []
    again = await browser.client.get("/home")
    assert again.status_code == 303
    assert again.headers["location"] == "/login?next=%2Fhome"


async def test_logged_out_visitors_are_sent_to_log_in_and_cannot_post(instance: Instance) -> None:
    await make_user(instance, "alice")
    visitor = Browser(new_client(instance))
    for path in STAFF_PAGES + ADMIN_PAGES:
        response = await visitor.client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path
    # With a valid anonymous form token, posting still needs a login.
    await visitor.get("/login")
    for path, data in (
        ("/compose", {"text": "hello", "author": "alice"}),
        ("/follow", {"target": "@bob@elsewhere.test"}),
        ("/settings/language", {"locale": "de"}),
        ("/admin/staff", {"username": "mallory"}),
    ):
        response = await visitor.post(path, data)
        assert response.status_code == 401, path
        assert "Log in" in response.text
    # And without one, it is a CSRF refusal before anything else.
    bare = await visitor.client.post("/compose", data={"text": "hello"})
    assert bare.status_code == 403


async def test_staff_members_cannot_reach_admin_pages(instance: Instance) -> None:
    await make_user(instance, "boss", role=Role.ADMIN)
    staff = await logged_in(instance, "alice")
    for path in STAFF_PAGES:
        assert (await staff.get(path)).status_code == 200, path
    for path in ADMIN_PAGES:
        response = await staff.get(path)
        assert response.status_code == 403, path
        assert "Only administrators" in response.text
    for path, data in (
        ("/admin/staff", {"username": "mallory", "kind": "admin"}),
        ("/admin/instance", {"name": "Taken over"}),
        ("/admin/federation/retry", {"host": "example.org"}),
        ("/admin/staff/1/role", {"role": "admin"}),
    ):
        assert (await staff.post(path, data)).status_code == 403, path
    page = await staff.get("/home")
    assert 'href="/admin/staff"' not in page.text


async def test_a_form_from_another_site_is_refused(instance: Instance) -> None:
    browser = await logged_in(instance, "alice")
    response = await browser.post(
        "/compose", {"text": "hi", "author": "alice"}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert "another site" in response.text
    stale = await browser.client.post(
        "/compose", data={"text": "hi", "author": "alice", "csrf_token": "x" * 43}
    )
    assert stale.status_code == 403


async def test_login_attempts_are_rate_limited_per_account(instance: Instance) -> None:
    await make_user(instance, "alice")
    browser = Browser(new_client(instance))
    await browser.get("/login")
    limiter: LoginRateLimiter = instance.app.state.login_limiter
    for _ in range(limiter.per_account):
        assert (
            await browser.post("/login", {"username": "alice", "password": "guess guess"})
        ).status_code == 401
    limited = await browser.post("/login", {"username": "alice", "password": PASSWORD})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "Too many failed log-in attempts" in limited.text


def test_rate_limiter_windows_per_address_and_account() -> None:
    now = [1000.0]
    limiter = LoginRateLimiter(per_ip=3, per_account=2, window=60, clock=lambda: now[0])

    def wait(ip: str, account: str) -> float | None:
        refusal = limiter.refusal(ip, account)
        return None if refusal is None else refusal.reset_after

    limiter.record_failure("10.0.0.1", "alice")
    assert wait("10.0.0.1", "alice") is None
    limiter.record_failure("10.0.0.1", "Alice")
    assert wait("10.0.0.2", "alice") == 60  # the account, from any address
    assert wait("10.0.0.1", "bob") is None
    limiter.record_failure("10.0.0.1", "bob")
    assert wait("10.0.0.1", "carol") == 60  # the address, for any account
    now[0] += 30
    assert wait("10.0.0.1", "carol") == 30
    now[0] += 31
    assert wait("10.0.0.1", "alice") is None
    limiter.record_failure("10.0.0.9", "dave")
    limiter.record_success("dave")
    assert wait("10.0.0.8", "dave") is None


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = LoginRateLimiter(max_keys=10)
    for number in range(100):
        limiter.record_failure(f"10.0.{number}.1", f"user{number}")
    assert len(limiter._failures) <= 10


async def test_rate_limited_authentication_does_not_check_the_password(instance: Instance) -> None:
    await make_user(instance, "alice")
    limiter = LoginRateLimiter(per_account=1)
    auth = AuthService(instance.context, limiter)
    limiter.record_failure("1.2.3.4", "alice")
    with pytest.raises(RateLimited):
        await auth.authenticate("alice", PASSWORD, ip="5.6.7.8")


async def test_invite_link_sets_a_password_once(instance: Instance) -> None:
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    made = await admin.post("/admin/staff", {"username": "newbie", "kind": "staff", "email": "n@example.org"})
    assert made.status_code == 200
    link = made.text.split('id="invite-link" class="copy-field" value="', 1)[1].split('"', 1)[0]
    path = link.removeprefix(instance.base_url)
    assert path.startswith("/invite/")

    newcomer = Browser(new_client(instance))
    page = await newcomer.get(path)
    assert page.status_code == 200
    assert "@newbie@a.test" in page.text
    mismatch = await newcomer.post(path, {"password": "first password", "password_again": "other password"})
    assert mismatch.status_code == 400
    done = await newcomer.post(path, {"password": "first password", "password_again": "first password"})
    assert done.status_code == 303
    assert done.headers["location"] == "/login?username=newbie&notice=password_set"
    await newcomer.login("newbie", "first password")
    assert (await newcomer.get("/home")).status_code == 200
    # Used once: the link no longer works.
    reused = await Browser(new_client(instance)).get(path)
    assert reused.status_code == 404
    assert "already been used" in reused.text
    assert (await newcomer.get("/invite/12.34.bogus")).status_code == 404
    assert (await newcomer.get("/invite/nonsense")).status_code == 404


async def test_disabled_login_is_logged_out_and_cannot_log_in(instance: Instance) -> None:
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    alice = await logged_in(instance, "alice")
    async with instance.context.sessions() as session:
        alice_id = await session.scalar(
            select(User.id)
            .join(Account, col(Account.id) == col(User.account_id))
            .where(Account.username == "alice")
        )
    disabled = await admin.post(f"/admin/staff/{alice_id}/disable")
    assert disabled.status_code == 303
    response = await alice.client.get("/home")
    assert response.status_code == 303
    again = Browser(new_client(instance))
    await again.get("/login")
    refused = await again.post("/login", {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 401
    assert "disabled" in refused.text


async def test_password_change_keeps_this_session_and_ends_the_others(instance: Instance) -> None:
    first = await logged_in(instance, "alice")
    second = Browser(new_client(instance))
    await second.login("alice")
    mismatch = await first.post(
        "/settings/password",
        {"current_password": PASSWORD, "new_password": "a new password", "new_password_again": "typo"},
    )
    assert mismatch.status_code == 400
    wrong = await first.post(
        "/settings/password",
        {
            "current_password": "not mine",
            "new_password": "a new password",
            "new_password_again": "a new password",
        },
    )
    assert wrong.status_code == 400
    assert "current password is wrong" in wrong.text
    changed = await first.post(
        "/settings/password",
        {
            "current_password": PASSWORD,
            "new_password": "a new password",
            "new_password_again": "a new password",
        },
    )
    assert changed.status_code == 303
    assert (await first.client.get("/home")).status_code == 200
    assert (await second.client.get("/home")).status_code == 303
    third = Browser(new_client(instance))
    await third.login("alice", "a new password")


async def test_next_parameter_cannot_send_people_elsewhere(instance: Instance) -> None:
    await make_user(instance, "alice")
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        browser = Browser(new_client(instance))
        await browser.get("/login")
        response = await browser.post("/login", {"username": "alice", "password": PASSWORD, "next": target})
        assert response.headers["location"] == "/home", target


async def test_sessions_in_daily_use_are_extended(instance: Instance) -> None:
    browser = await logged_in(instance, "alice")
    async with instance.context.sessions() as session:
        stored = (await session.scalars(select(WebSession))).one()
        stored.expires_at = utcnow() + timedelta(days=2)
        session.add(stored)
        await session.commit()
    page = await browser.client.get("/home")
    assert page.status_code == 200
    assert any(
        "herold_session=" in value and "Max-Age=2592000" in value
        for value in page.headers.get_list("set-cookie")
    )
    async with instance.context.sessions() as session:
        renewed = (await session.scalars(select(WebSession))).one()
    assert renewed.expires_at > utcnow() + timedelta(days=29)
    # An expired session is no session.
    async with instance.context.sessions() as session:
        renewed.expires_at = utcnow() - timedelta(seconds=1)
        session.add(renewed)
        await session.commit()
    assert (await browser.client.get("/home")).status_code == 303
