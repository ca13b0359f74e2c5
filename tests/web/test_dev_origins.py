"""Forms on a development instance work at whichever loopback address the browser used (the server
listens on 127.0.0.1, the instance is called localhost:8000); a configured domain keeps its exact
Origin check."""

from __future__ import annotations

import httpx
import pytest

from app.models import Role
from tests.lab import Instance, Lab
from tests.web.helpers import BROWSER, PASSWORD, Browser, make_user


def browser_at(instance: Instance, origin: str) -> Browser:
    """A browser that opened the instance at `origin`: it sends that Host, and that Origin with forms."""
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=instance.app),
        base_url=origin,
        headers={**BROWSER, "Origin": origin},
    )
    return Browser(client)


@pytest.fixture
async def development(lab: Lab) -> Instance:
    instance = await lab.instance("localhost:8000")
    await make_user(instance, "alice", role=Role.ADMIN)
    return instance


@pytest.mark.parametrize(
    "origin", ["http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000", "http://127.0.0.1:9000"]
)
async def test_login_works_at_every_loopback_address(development: Instance, origin: str) -> None:
    browser = browser_at(development, origin)
    try:
        await browser.get("/login")
        answer = await browser.post("/login", {"username": "alice", "password": PASSWORD})
        assert answer.status_code == 303, answer.text
        home = await browser.get("/home")
        assert home.status_code == 200
        posted = await browser.post("/compose", {"text": "from " + origin, "author": "alice"})
        assert posted.status_code == 303, posted.text
    finally:
        await browser.aclose()


async def test_setup_works_at_the_address_the_server_listens_on(lab: Lab) -> None:
    fresh = await lab.instance("localhost:8000")
    browser = browser_at(fresh, "http://127.0.0.1:8000")
    try:
        await browser.get("/")
        made = await browser.post(
            "/setup",
            {"setup_token": fresh.context.setup_token, "username": "admin", "password": PASSWORD},
        )
        assert made.status_code == 303, made.text
    finally:
        await browser.aclose()


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        # Another local server (a page on another port) posting to this one.
        ("127.0.0.1:8000", "http://127.0.0.1:3000"),
        ("127.0.0.1:8000", "http://localhost:8000.evil.example"),
        ("127.0.0.1:8000", "https://evil.example"),
        # A Host that says loopback does not make another site's form welcome.
        ("evil.example", "http://evil.example"),
    ],
)
async def test_other_origins_are_still_refused_in_development(
    development: Instance, host: str, origin: str
) -> None:
    browser = browser_at(development, f"http://{host}")
    try:
        await browser.get("/login")
        answer = await browser.post(
            "/login", {"username": "alice", "password": PASSWORD}, headers={"Origin": origin}
        )
        assert answer.status_code == 403
        assert "another site" in answer.text
    finally:
        await browser.aclose()


async def test_a_configured_domain_accepts_only_its_own_origin(lab: Lab) -> None:
    production = await lab.instance("org.test")
    await make_user(production, "alice")
    for origin, status in (
        ("http://127.0.0.1:8000", 403),
        ("http://localhost:8000", 403),
        ("http://org.test", 303),
    ):
        browser = browser_at(production, origin)
        try:
            await browser.get("/login")
            answer = await browser.post("/login", {"username": "alice", "password": PASSWORD})
            assert answer.status_code == status, origin
        finally:
            await browser.aclose()
