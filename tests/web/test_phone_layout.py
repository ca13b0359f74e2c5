"""The admin pages and a timeline on a phone (390 by 844 px), in Debian's Chromium through Playwright.

A real `herold serve` shows a database filled as a working team's would be: staff with long
names, an organisation account, domain blocks, an open report, failing deliveries, posts with
every action. On each page nothing may scroll sideways, no word in a table may break letter by
letter, and a post's actions sit on one line or wrap as a group (never "Delete" alone). The
screenshots are for people to look at: with HEROLD_SCREENSHOTS=1 they replace the committed
artifacts/screenshots/phone-*.png, otherwise they go to the test's temporary folder (so a test run
leaves the tracked files alone).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.main import app_context, create_app
from app.models import DeliveryJob, DomainHealth, OutboxActivity, Role, User
from app.models.base import utcnow
from app.services.account_moderation import AccountModerationService
from app.services.accounts import AccountService
from app.services.domain_blocks import DomainBlockService
from app.services.posting import PostingService
from app.services.staff import StaffService
from tests.lab import DatabaseFactory
from tests.processes import ServerProcess, free_port, herold_env
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, SCREENSHOTS, log_in, playwright_api

PHONE = {"width": 390, "height": 844}
PAGES = [
    ("/admin/staff", "admin-team"),
    ("/admin/instance", "admin-about"),
    ("/admin/domains", "admin-domain-blocks"),
    ("/admin/reports", "admin-reports"),
    ("/admin/federation", "admin-federation"),
    ("/admin/federation/domains/mastodon.example", "admin-federation-domain"),
    ("/admin/announcements", "admin-announcements"),
    ("/home", "home"),
    ("/about", "about"),
]

# Run in the page: what a person on a phone would notice, as data the test can assert on.
LAYOUT_PROBLEMS = """
() => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth) {
    problems.push(`the page is ${root.scrollWidth}px wide on a ${window.innerWidth}px screen`);
  }
  for (const box of document.querySelectorAll('.tabs, .table-wrap')) {
    if (box.scrollWidth > box.clientWidth + 1) {
      problems.push(`${box.className} scrolls sideways (${box.scrollWidth}px in ${box.clientWidth}px)`);
    }
  }
  // A word in a table cell broken over lines: its letters lie on more than one line (a hyphen may break).
  for (const cell of document.querySelectorAll('.data-table th, .data-table td')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement.closest('.visually-hidden, option, select')) continue;
      for (const match of node.data.matchAll(/[^\\s-]+/g)) {
        if (match[0].length > 30) continue;  // long addresses may wrap
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (tops.size > 1) problems.push(`"${match[0]}" breaks over ${tops.size} lines in a table cell`);
      }
    }
  }
  // A post's actions: on one line, or the post's own actions (pin, edit, delete) wrapped together.
  for (const bar of document.querySelectorAll('.post-actions')) {
    const lineOf = element => Math.round(element.getBoundingClientRect().top);
    const all = [...bar.querySelectorAll('.action')];
    const own = [...bar.querySelectorAll('.post-manage .action')];
    const shared = all.filter(action => !own.includes(action));
    const lines = group => new Set(group.map(lineOf)).size;
    if (lines(all) > 1 && (lines(shared) > 1 || lines(own) > 1)) {
      problems.push(`post actions break apart: ${all.map(a => a.textContent.trim() + '@' + lineOf(a)).join(', ')}`);
    }
  }
  return problems;
}
"""

if not CHROMIUM.exists():
    pytest.skip(
        "browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
        allow_module_level=True,
    )


async def seed(settings: Settings) -> None:
    """What a working team's server holds, written through the services (as the pages would)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        context = app_context(app)
        accounts = AccountService(context)
        admin = await accounts.create_local_account("admin", role=Role.ADMIN, password=PASSWORD)
        staff = StaffService(context)
        by: User = admin.user
        for name, display in (
            ("christina_mueller", "Christina Müller-Lüdenscheidt"),
            ("press_office_weekend", "Press office (weekends)"),
            ("bob", "Bob"),
        ):
            await staff.create_member(name, by=by, display_name=display)
        town = await staff.create_member(
            "townhall", by=by, organization=True, display_name="Town Hall of Gelsenkirchen"
        )
        await staff.grant_delegate(town.account.id, by.id, by=by)
        blocks = DomainBlockService(context)
        await blocks.block(
            "threads.net", public_comment="Meta", private_comment="decided at the May meeting", by=by
        )
        await blocks.block(
            "a-rather-long-subdomain.example.social",
            severity="silence",
            reject_media=True,
            reject_reports=True,
            public_comment="Spam waves",
            by=by,
        )
        await blocks.allow("friends.example", by=by)
        mallory = await accounts.create_local_account("mallory_the_spammer", password=PASSWORD)
        await AccountModerationService(context).report(
            by, admin.account, mallory.account, comment="Posts the same advert every five minutes"
        )
        posting = PostingService(context)
        await posting.create(town.account, "The library opens on Sundays from May.", written_by_user_id=by.id)
        mine = await posting.create(admin.account, "Hello fediverse! The town hall is now on #Herold.")
        await posting.like(admin.account, mine.id)
        now = utcnow()
        async with context.sessions() as session:
            activity = OutboxActivity(
                uri=f"{settings.base_url}/x", activity_type="Create", account_id=admin.account.id, payload={}
            )
            session.add(activity)
            await session.flush()
            session.add(
                DeliveryJob(
                    activity_id=activity.id,
                    inbox_url="https://unreachable.example/inbox",
                    host="unreachable.example",
                    next_attempt_at=now + timedelta(hours=3),
                    attempts=5,
                    last_error="Cannot connect to host unreachable.example:443 ssl:default [Connection refused]",
                )
            )
            session.add(DomainHealth(host="unreachable.example", failure_days=7, unavailable_since=now))
            await session.commit()


@pytest.fixture
async def server(tmp_path: Path, databases: DatabaseFactory) -> AsyncIterator[str]:
    port = free_port()
    domain = f"127.0.0.1:{port}"
    database_url = await databases.new_database_url()
    data_dir = tmp_path / "data"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=database_url,
        data_dir=data_dir,
        secret_key="test-secret-key-of-the-phone-layout-server",
        local_domain=domain,
        https=False,
    )
    await seed(settings)
    env = herold_env(data_dir, database_url, HOST="127.0.0.1", PORT=str(port), LOCAL_DOMAIN=domain)
    process = ServerProcess(["serve"], env, tmp_path / "serve.log")
    base_url = f"http://{domain}"
    try:
        process.wait_http(f"{base_url}/.well-known/nodeinfo")
        yield base_url
    finally:
        process.stop()
    assert "Traceback" not in process.output(), process.output()


async def test_admin_pages_and_timeline_are_usable_on_a_phone(server: str, tmp_path: Path) -> None:
    shots = SCREENSHOTS if os.environ.get("HEROLD_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            found: dict[str, Any] = {}
            english = await browser.new_context(viewport=PHONE, locale="en-GB")
            page = await english.new_page()
            await log_in(page, server, "admin")
            # The same login in German, whose words are longer.
            german = await browser.new_context(
                viewport=PHONE, locale="de-DE", storage_state=await english.storage_state()
            )
            for context, label in ((english, "en"), (german, "de")):
                page = await context.new_page()
                page.set_default_timeout(15_000)
                for path, name in PAGES:
                    response = await page.goto(f"{server}{path}")
                    assert response is not None and response.status == 200, path
                    problems = await page.evaluate(LAYOUT_PROBLEMS)
                    if problems:
                        found[f"{label} {path}"] = problems
                    if label == "en":
                        await page.screenshot(path=str(shots / f"phone-{name}.png"), full_page=True)
                await context.close()
        finally:
            await browser.close()
    assert found == {}, found
