"""The staff web UI in a real browser: Debian's Chromium, driven by Playwright, against real servers.

Two `herold serve` processes on loopback ports federate with each other, as two machines would.
A newcomer sets up the first one from the browser, logs in, locks the account, posts; someone on
the second server follows by handle, the request is approved, and the next post arrives there.
Then the team posts as the organisation account. Screenshots of the main pages, at phone and
desktop widths, are saved to artifacts/screenshots/ for people (and reviewers) to look at.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab import DatabaseFactory
from tests.processes import ServerProcess, free_port, herold_env, run_herold

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
PASSWORD = "a long enough password"

if not CHROMIUM.exists():
    pytest.skip(
        "browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
        allow_module_level=True,
    )
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="browser tests need playwright (pip install -e '.[dev]')"
)
Page = playwright_api.Page
expect = playwright_api.expect


@dataclass
class Server:
    process: ServerProcess
    base_url: str
    domain: str

    def setup_token(self) -> str:
        match = re.search(r"setup token: (\S+)", self.process.output())
        assert match, f"no setup token in the server log:\n{self.process.output()}"
        return match.group(1)


async def start_server(tmp_path: Path, databases: DatabaseFactory, name: str, *, users: list[str]) -> Server:
    port = free_port()
    domain = f"127.0.0.1:{port}"
    env = herold_env(
        tmp_path / name,
        await databases.new_database_url(),
        HOST="127.0.0.1",
        PORT=str(port),
        LOCAL_DOMAIN=domain,
        INSTANCE_NAME=f"Herold {name}",
        # Both servers live on loopback, which the SSRF guard refuses unless allowed.
        ALLOWED_PRIVATE_ADDRESSES="127.0.0.0/8",
    )
    for user in users:
        made = run_herold(["accounts", "create", user, "--password", PASSWORD], env)
        assert made.returncode == 0, made.stderr
    process = ServerProcess(["serve"], env, tmp_path / f"{name}.log")
    base_url = f"http://{domain}"
    process.wait_http(f"{base_url}/.well-known/nodeinfo")
    return Server(process, base_url, domain)


@pytest.fixture
async def servers(tmp_path: Path, databases: DatabaseFactory) -> AsyncIterator[tuple[Server, Server]]:
    first = await start_server(tmp_path, databases, "one", users=[])
    second = await start_server(tmp_path, databases, "two", users=["bob"])
    try:
        yield first, second
    finally:
        first.process.stop()
        second.process.stop()
    for server in (first, second):
        assert "Traceback" not in server.process.output(), server.process.output()


async def shoot(page: Page, name: str) -> None:
    """Full-page screenshots of the current page at phone and desktop widths."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size(DESKTOP)


async def log_in(page: Page, base_url: str, username: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base_url}/login")
    await page.get_by_label("User name").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(f"{base_url}/home?notice=welcome")


async def reload_until(page: Page, url: str, text: str, seconds: float = 30.0) -> None:
    """Federation is asynchronous: reload until `text` shows (the worker delivers within seconds)."""
    deadline = time.monotonic() + seconds
    while True:
        await page.goto(url)
        if await page.get_by_text(text).count():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} did not appear on {url} within {seconds} s")
        await page.wait_for_timeout(500)


async def test_newcomer_sets_up_posts_federates_and_moderates_followers_in_a_browser(
    servers: tuple[Server, Server],
) -> None:
    one, two = servers
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            await _scenario(browser, one, two)
        finally:
            await browser.close()


async def _scenario(browser: object, one: Server, two: Server) -> None:
    admin_context = await browser.new_context(viewport=DESKTOP, locale="en-GB")  # type: ignore[attr-defined]
    visitor_context = await browser.new_context(viewport=DESKTOP, locale="en-GB")  # type: ignore[attr-defined]
    bob_context = await browser.new_context(viewport=DESKTOP, locale="en-GB")  # type: ignore[attr-defined]
    admin, visitor, bob = (
        await admin_context.new_page(),
        await visitor_context.new_page(),
        await bob_context.new_page(),
    )
    for page in (admin, visitor, bob):
        page.set_default_timeout(15_000)
    errors: list[str] = []
    for page in (admin, visitor, bob):
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on(
            "response",
            lambda response: (
                errors.append(f"{response.status} {response.url}") if response.status >= 400 else None
            ),
        )

    # First-admin setup with the token from the server log, then the first login.
    await admin.goto(f"{one.base_url}/")
    await expect(admin.get_by_role("heading", name="Welcome to Herold")).to_be_visible()
    await shoot(admin, "setup")
    await admin.get_by_label("Setup token").fill(one.setup_token())
    await admin.get_by_label("User name").fill("admin")
    await admin.get_by_label("Password (at least 8 characters)").fill(PASSWORD)
    await admin.get_by_role("button", name="Create administrator").click()
    await expect(admin.get_by_text("Your administrator account is ready")).to_be_visible()
    await expect(admin.get_by_label("User name")).to_have_value("admin")
    await shoot(admin, "login")
    await admin.get_by_label("Password").fill(PASSWORD)
    await admin.get_by_role("button", name="Log in").click()
    await expect(admin.get_by_text("Welcome! You are logged in.")).to_be_visible()
    await shoot(admin, "home-empty")

    # Profile: a name, a bio, a field, and a locked account (followers are approved by hand).
    await admin.get_by_role("link", name="Settings").click()
    await admin.get_by_label("Display name").fill("Town Hall Press Office")
    await admin.get_by_label("Bio").fill("News from the town hall.\n\nWritten by the press team. #townhall")
    await admin.get_by_label("Label 1").fill("Website")
    await admin.get_by_label("Content 1").fill("https://town.example/press")
    await admin.get_by_label("Approve followers by hand (locked account)").check()
    await admin.get_by_role("button", name="Save profile").click()
    await expect(admin.get_by_text("Your changes were saved.")).to_be_visible()
    await shoot(admin, "settings-profile")

    # Compose, with the live character counter, and publish.
    await admin.get_by_role("link", name="Write a post").click()
    text = admin.get_by_label("Text", exact=True)
    await text.fill("Hello fediverse! The town hall is now on #Herold.")
    await expect(admin.locator("#text-counter")).to_have_text("451 characters left")
    await shoot(admin, "compose")
    await admin.get_by_role("button", name="Publish").click()
    await expect(admin.get_by_text("Your post was published.")).to_be_visible()
    await expect(admin.locator(".post-focus")).to_contain_text("The town hall is now on")
    await shoot(admin, "post-staff")

    # The post is on the public profile, for a visitor who is not logged in.
    await visitor.goto(f"{one.base_url}/@admin")
    await expect(visitor.get_by_role("heading", name="Town Hall Press Office")).to_be_visible()
    await expect(visitor.get_by_text("The town hall is now on")).to_be_visible()
    await shoot(visitor, "profile")
    await visitor.get_by_text("Follow", exact=True).click()
    await expect(visitor.get_by_label("Your server or handle")).to_be_visible()
    await visitor.set_viewport_size(PHONE)
    await visitor.screenshot(path=str(SCREENSHOTS / "follow-dialog-phone.png"))
    await visitor.set_viewport_size(DESKTOP)
    await visitor.locator(".post-time").first.click()
    await expect(visitor.locator(".post-focus")).to_contain_text("The town hall is now on")
    await shoot(visitor, "post-public")
    await visitor.goto(f"{one.base_url}/")
    await shoot(visitor, "front-page")

    # Someone on the second server follows by handle; the account is locked, so it is a request.
    await log_in(bob, two.base_url, "bob")
    await bob.get_by_role("link", name="Search").click()
    await bob.get_by_label("Handle, profile address, name or #hashtag").fill(f"@admin@{one.domain}")
    await bob.get_by_role("button", name="Search").click()
    await expect(bob.get_by_role("heading", name="Town Hall Press Office")).to_be_visible()
    await bob.get_by_role("button", name="Follow", exact=True).click()
    await expect(bob.get_by_text("Follow request sent.")).to_be_visible()
    await expect(bob.get_by_text("Follow request pending")).to_be_visible()
    await shoot(bob, "search-follow")

    # The request arrives; the admin approves it; the second server learns it was accepted.
    await reload_until(admin, f"{one.base_url}/notifications", f"@bob@{two.domain}")
    await shoot(admin, "notifications-request")
    await admin.get_by_role("button", name=f"Approve @bob@{two.domain}").click()
    await expect(admin.get_by_text("Follow request approved.")).to_be_visible()
    await reload_until(bob, f"{two.base_url}/search?q=@admin@{one.domain}", "Unfollow")

    # The next post is delivered to the follower's home timeline on the other server.
    await admin.goto(f"{one.base_url}/compose")
    await admin.get_by_label("Text", exact=True).fill("Second post: the council meets on Tuesday.")
    await admin.get_by_role("button", name="Publish").click()
    await expect(admin.get_by_text("Your post was published.")).to_be_visible()
    await reload_until(bob, f"{two.base_url}/home", "the council meets on Tuesday")
    await shoot(bob, "home-remote")

    # Team posting: an organisation account, the admin granted the right to post as it.
    await admin.goto(f"{one.base_url}/admin/staff")
    await admin.get_by_label("Organisation account (for team posting)").check()
    await admin.get_by_label("User name").fill("townhall")
    await admin.get_by_label("Display name (optional)").fill("Town Hall")
    await admin.get_by_role("button", name="Create account").click()
    await expect(admin.get_by_text("Your changes were saved.")).to_be_visible()
    await admin.get_by_label("Allow to post as this account:").select_option(label="@admin")
    await admin.get_by_role("button", name="Grant").click()
    await expect(admin.get_by_text("Posting right granted.")).to_be_visible()
    await shoot(admin, "admin-staff")
    await admin.goto(f"{one.base_url}/compose")
    await admin.get_by_label("Post as").select_option(value="townhall")
    await admin.get_by_label("Text", exact=True).fill("Official: the library opens on Sundays from May.")
    await admin.get_by_role("button", name="Publish").click()
    await expect(admin.get_by_text("Your post was published.")).to_be_visible()
    focus = admin.locator(".post-focus")
    await expect(focus).to_contain_text("@townhall@")
    await expect(focus).to_contain_text(f"Written by @admin@{one.domain}")
    # Visitors see the organisation as the author, never who typed it.
    await visitor.goto(f"{one.base_url}/@townhall")
    await expect(visitor.get_by_text("the library opens on Sundays")).to_be_visible()
    await expect(visitor.get_by_text("Written by")).to_have_count(0)

    # The remaining main pages, for the screenshots.
    for path, name in (
        ("/home", "home"),
        ("/local", "local"),
        ("/notifications", "notifications"),
        ("/admin/instance", "admin-instance"),
        ("/admin/federation", "admin-federation"),
        ("/settings/account", "settings-account"),
    ):
        await admin.goto(f"{one.base_url}{path}")
        await shoot(admin, name)
    await visitor.goto(f"{one.base_url}/about")
    await shoot(visitor, "about")
    assert errors == [], errors
