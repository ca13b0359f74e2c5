"""Logging in and out: sessions, cookies, CSRF, rate limiting, invites and who may open what."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlmodel import col, select

from app.models import Account, Role, User, WebSession
from app.models.base import utcnow
from app.services.accounts import AccountService
from app.services.auth import AuthService, LoginError, RateLimited
from app.services.passwords import hash_password
from app.services.rate_limits import LoginRateLimiter
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
ADMIN_PAGES = ["/admin/staff", "/admin/instance", "/admin/federation", "/admin/announcements"]


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


async def test_hammering_a_name_does_not_lock_its_owner_out(instance: Instance) -> None:
    await make_user(instance, "alice", role=Role.ADMIN)
    attacker = Browser(new_client(instance, address="203.0.113.66"))
    limiter = instance.context.rate_limits.logins
    for _ in range(limiter.per_name_and_address):
        wrong = await attacker.post("/login", {"username": "alice", "password": "guess guess"})
        assert wrong.status_code == 401
    limited = await attacker.post("/login", {"username": "alice", "password": PASSWORD})
    assert limited.status_code == 429
    assert 890 <= int(limited.headers["retry-after"]) <= 900
    assert "Too many failed log-in attempts from your address. Try again in 15 minutes." in limited.text
    # The owner, from an address that has not been failing, still gets in.
    owner = Browser(new_client(instance, address="198.51.100.7"))
    await owner.login("alice")
    assert (await owner.get("/admin/staff")).status_code == 200


async def test_one_address_trying_many_names_is_throttled(instance: Instance) -> None:
    await make_user(instance, "alice")
    sprayer = Browser(new_client(instance, address="203.0.113.9"))
    limiter = instance.context.rate_limits.logins
    for number in range(limiter.per_address):
        wrong = await sprayer.post("/login", {"username": f"name{number}", "password": "Summer2026!"})
        assert wrong.status_code == 401
    refused = await sprayer.post("/login", {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    await Browser(new_client(instance, address="198.51.100.8")).login("alice")


@pytest.mark.parametrize(
    ("language", "seconds_left", "words"),
    [
        ("en", 14 * 60 + 1, "Try again in 15 minutes."),
        ("en", 14 * 60, "Try again in 14 minutes."),
        ("en", 60, "Try again in 1 minute."),
        ("en", 30, "Try again in 30 seconds."),
        ("en", 1, "Try again in 1 second."),
        ("de", 14 * 60, "Versuche es in 14 Minuten wieder."),
        ("de", 60, "Versuche es in 1 Minute wieder."),
        ("de", 30, "Versuche es in 30 Sekunden wieder."),
    ],
)
async def test_the_refusal_says_when_to_retry_in_words(
    instance: Instance, language: str, seconds_left: int, words: str
) -> None:
    now = [1000.0]
    limiter = LoginRateLimiter(per_name_and_address=1, window=15 * 60, clock=lambda: now[0])
    instance.context.rate_limits.logins = limiter
    limiter.record_failure("127.0.0.1", "alice")
    now[0] += 15 * 60 - seconds_left
    browser = Browser(new_client(instance))
    refused = await browser.post(
        "/login", {"username": "alice", "password": PASSWORD}, headers={"Accept-Language": language}
    )
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(seconds_left)
    assert words in refused.text


def test_rate_limiter_windows_per_address_and_name() -> None:
    now = [1000.0]
    limiter = LoginRateLimiter(per_address=3, per_name_and_address=2, window=60, clock=lambda: now[0])

    def wait(address: str, name: str) -> float | None:
        refusal = limiter.refusal(address, name)
        return None if refusal is None else refusal.reset_after

    limiter.record_failure("10.0.0.1", "alice")
    assert wait("10.0.0.1", "alice") is None
    limiter.record_failure("10.0.0.1", "Alice")
    assert wait("10.0.0.1", "alice") == 60  # the name, from this address
    assert wait("10.0.0.2", "alice") is None  # never the name from everywhere
    assert wait("10.0.0.1", "bob") is None
    limiter.record_failure("10.0.0.1", "bob")
    assert wait("10.0.0.1", "carol") == 60  # the address, for any name
    now[0] += 30
    assert wait("10.0.0.1", "carol") == 30
    now[0] += 31
    assert wait("10.0.0.1", "alice") is None
    limiter.record_failure("10.0.0.9", "dave")
    limiter.record_success("10.0.0.9", "dave")
    # Only that name's count from that address is cleared: an attacker's own login resets nothing else.
    assert "name:dave@address:10.0.0.9" not in limiter._failures
    assert "address:10.0.0.9" in limiter._failures


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = LoginRateLimiter(max_keys=10)
    for number in range(100):
        limiter.record_failure(f"10.0.{number}.1", f"user{number}")
    assert len(limiter._failures) <= 10


async def test_rate_limited_authentication_does_not_check_the_password(instance: Instance) -> None:
    await make_user(instance, "alice")
    instance.context.rate_limits.logins = limiter = LoginRateLimiter(per_name_and_address=1)
    auth = AuthService(instance.context)
    limiter.record_failure("1.2.3.4", "alice")
    with pytest.raises(RateLimited):
        await auth.authenticate("alice", PASSWORD, ip="1.2.3.4")
    assert await auth.authenticate("alice", PASSWORD, ip="5.6.7.8")


async def test_nobody_logs_in_as_an_organisation_account(instance: Instance) -> None:
    _user, org = await make_user(instance, "knnktv", organization=True)
    # One made before organisation accounts lost their password still cannot be used to log in.
    async with instance.context.sessions() as session:
        user = (await session.scalars(select(User).where(User.account_id == org.id))).one()
        assert user.password_hash == ""
        user.password_hash = await hash_password(PASSWORD)
        session.add(user)
        await session.commit()
    with pytest.raises(LoginError) as refused:
        await AuthService(instance.context).authenticate("knnktv", PASSWORD, ip="1.2.3.4")
    assert refused.value.reason == "organization"
    assert instance.context.rate_limits.logins.refusal("1.2.3.4", "knnktv") is None
    for _ in range(instance.context.rate_limits.logins.per_name_and_address - 1):
        with pytest.raises(LoginError):
            await AuthService(instance.context).authenticate("knnktv", PASSWORD, ip="1.2.3.4")
    with pytest.raises(RateLimited):  # each try costs a hash: counted like a wrong password
        await AuthService(instance.context).authenticate("knnktv", PASSWORD, ip="1.2.3.4")
    browser = Browser(new_client(instance))
    page = await browser.post("/login", {"username": "knnktv", "password": PASSWORD})
    assert page.status_code == 401
    assert "Nobody logs in as an organisation account" in page.text
    assert "herold_session" not in browser.client.cookies
    # A session opened for it before organisation accounts lost their logins no longer works.
    token, _session = await AuthService(instance.context).start_session(user)
    assert await AuthService(instance.context).session_for_token(token) is None


async def test_an_organisation_account_gets_no_invite_link(instance: Instance) -> None:
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    made = await admin.post("/admin/staff", {"username": "knnktv", "kind": "organization"})
    assert made.status_code == 303
    async with instance.context.sessions() as session:
        org_user, _org = (
            await session.execute(
                select(User, Account)
                .join(Account, col(Account.id) == col(User.account_id))
                .where(Account.username == "knnktv")
            )
        ).one()
    assert org_user.password_hash == ""  # nothing to guess, nothing to hand out
    refused = await admin.post(f"/admin/staff/{org_user.id}/invite")
    assert refused.status_code == 400
    assert "Organisation accounts have no password" in refused.text
    assert 'id="invite-link"' not in refused.text
    # A link made for it by an older version opens nothing.
    token = AuthService(instance.context).invite_token(org_user)
    assert (await Browser(new_client(instance)).get(f"/invite/{token}")).status_code == 404


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


async def test_the_most_common_passwords_are_refused_everywhere_one_is_chosen(instance: Instance) -> None:
    common = "Password1"  # in the ten thousand most common, whatever its capitals
    newcomer = Browser(new_client(instance))
    await newcomer.get("/")
    setup = await newcomer.post(
        "/setup", {"setup_token": instance.context.setup_token, "username": "boss", "password": common}
    )
    assert setup.status_code == 400 and "one of the most common" in setup.text
    assert await AccountService(instance.context).count_users() == 0

    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    made = await admin.post("/admin/staff", {"username": "newbie", "kind": "staff", "email": "n@example.org"})
    path = made.text.split('id="invite-link" class="copy-field" value="', 1)[1].split('"', 1)[0]
    path = path.removeprefix(instance.base_url)
    invited = Browser(new_client(instance))
    await invited.get(path)
    refused = await invited.post(path, {"password": common, "password_again": common})
    assert refused.status_code == 400 and "one of the most common" in refused.text

    changed = await admin.post(
        "/settings/password",
        {"current_password": PASSWORD, "new_password": "iloveyou", "new_password_again": "iloveyou"},
    )
    assert changed.status_code == 400 and "one of the most common" in changed.text
    await Browser(new_client(instance)).login("boss")  # the old password still works
