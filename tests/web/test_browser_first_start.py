"""The README's first step in a real browser: `make run` (herold migrate, then herold serve, with no
settings at all), then the address the console prints, the setup token it prints, and a logged-in
administrator. Also at the address uvicorn prints, where a newcomer may open it instead."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import ServerProcess, free_port, run_herold
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, playwright_api

expect = playwright_api.expect
SETUP_LINE = re.compile(r"Open (http\S+?)/? and create the first administrator with setup token: (\S+)")
UVICORN_LINE = re.compile(r"Uvicorn running on (http://\S+)")


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """`make run` on a fresh checkout: default settings, but a free port (tests run side by side)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        "DATA_DIR": str(tmp_path / "data"),
        "PORT": str(free_port()),
    }
    migrated = run_herold(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stderr == ""  # quiet unless --verbose
    process = ServerProcess(["serve"], env, tmp_path / "serve.log")
    try:
        process.wait_http(f"http://127.0.0.1:{env['PORT']}/.well-known/nodeinfo")
        yield process
    finally:
        process.stop()
    assert "Traceback" not in process.output(), process.output()


async def test_the_address_the_console_prints_takes_a_newcomer_to_a_logged_in_admin(
    fresh_server: ServerProcess,
) -> None:
    console = fresh_server.output()
    printed = SETUP_LINE.search(console)
    assert printed, console
    address, token = printed.groups()
    listening = UVICORN_LINE.search(console)
    assert listening, console
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            newcomer = await (await browser.new_context(locale="en-GB")).new_page()
            newcomer.set_default_timeout(15_000)
            await newcomer.goto(address + "/")
            await expect(newcomer.get_by_role("heading", name="Welcome to Herold")).to_be_visible()
            await newcomer.get_by_label("Setup token").fill(token)
            await newcomer.get_by_label("User name").fill("admin")
            await newcomer.get_by_label("Password (at least 8 characters)").fill(PASSWORD)
            await newcomer.get_by_role("button", name="Create administrator").click()
            await expect(newcomer.get_by_text("Your administrator account is ready")).to_be_visible()
            await newcomer.get_by_label("Password").fill(PASSWORD)
            await newcomer.get_by_role("button", name="Log in").click()
            await expect(newcomer.get_by_text("Welcome! You are logged in.")).to_be_visible()
            assert newcomer.url.startswith(address + "/home")

            # The address uvicorn prints (and the README named before) works as well.
            other = await (await browser.new_context(locale="en-GB")).new_page()
            other.set_default_timeout(15_000)
            await other.goto(listening.group(1) + "/login")
            await other.get_by_label("User name").fill("admin")
            await other.get_by_label("Password").fill(PASSWORD)
            await other.get_by_role("button", name="Log in").click()
            await expect(other.get_by_text("Welcome! You are logged in.")).to_be_visible()
        finally:
            await browser.close()
