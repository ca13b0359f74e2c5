"""The one-time first-administrator setup on a fresh server."""

from __future__ import annotations

from sqlmodel import select

from app.models import Account, Role, User
from app.services.passwords import verify_password
from tests.lab import Instance
from tests.web.helpers import BROWSER, Browser, new_client


async def test_fresh_server_offers_setup_and_creates_the_first_admin(instance: Instance) -> None:
    browser = Browser(new_client(instance))
    page = await browser.get("/")
    assert page.status_code == 200
    assert 'name="setup_token"' in page.text
    assert page.headers["cache-control"] == "private, no-store"

    wrong = await browser.post(
        "/setup", {"setup_token": "guess", "username": "root", "password": "long enough"}
    )
    assert wrong.status_code == 403
    assert "setup token is wrong" in wrong.text

    no_csrf = await browser.client.post(
        "/setup",
        data={"setup_token": instance.context.setup_token, "username": "root", "password": "long enough"},
    )
    assert no_csrf.status_code == 403
    assert "CSRF" in no_csrf.text

    token = instance.context.setup_token
    made = await browser.post(
        "/setup", {"setup_token": token, "username": "Admin", "password": "long enough"}
    )
    assert made.status_code == 303
    assert made.headers["location"] == "/login?username=admin&notice=setup_done"

    async with instance.context.sessions() as session:
        account = (await session.scalars(select(Account).where(Account.username == "admin"))).one()
        user = (await session.scalars(select(User).where(User.account_id == account.id))).one()
    assert user.role == Role.ADMIN
    assert await verify_password(user.password_hash, "long enough")

    # The next step is logging in with what was chosen.
    login = await browser.get(made.headers["location"])
    assert 'value="admin"' in login.text
    assert "Your administrator account is ready" in login.text
    await browser.login("admin", "long enough")
    assert (await browser.get("/admin/staff")).status_code == 200

    # The form is gone once an account exists, and the token cannot be used twice.
    home = await instance.client.get("/", headers=BROWSER)
    assert 'name="setup_token"' not in home.text
    again = await browser.post(
        "/setup", {"setup_token": token, "username": "other", "password": "long enough"}
    )
    assert again.status_code == 404


async def test_setup_form_reports_bad_input(instance: Instance) -> None:
    browser = Browser(new_client(instance))
    await browser.get("/")
    token = instance.context.setup_token
    response = await browser.post(
        "/setup", {"setup_token": token, "username": "no spaces", "password": "long enough"}
    )
    assert response.status_code == 400
    assert "not a valid user name" in response.text
    short = await browser.post("/setup", {"setup_token": token, "username": "admin", "password": "short"})
    assert short.status_code == 400
    assert "at least 8 characters" in short.text


async def test_unknown_pages_answer_404_in_the_negotiated_format(instance: Instance) -> None:
    as_json = await instance.client.get("/no/such/page", headers={"Accept": "application/activity+json"})
    assert as_json.status_code == 404
    assert as_json.json() == {"error": "nothing here at /no/such/page"}
    as_html = await instance.client.get("/no/such/page", headers=BROWSER)
    assert as_html.status_code == 404
    assert as_html.headers["content-type"].startswith("text/html")
    assert "nothing here at /no/such/page" in as_html.text
