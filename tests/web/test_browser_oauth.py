"""The OAuth authorize page in Debian's Chromium against a real `herold serve`: a staff member
logs in on the way, chooses the organisation account, authorizes, and lands on the app's redirect
URI with the code; the token it buys acts as the organisation."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.lab import DatabaseFactory
from tests.processes import ServerProcess, free_port, herold_env, run_herold
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PASSWORD, expect, playwright_api


async def test_authorize_as_the_organisation_in_a_browser(tmp_path: Path, databases: DatabaseFactory) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = herold_env(
        tmp_path / "data",
        await databases.new_database_url(),
        HOST="127.0.0.1",
        PORT=str(port),
        LOCAL_DOMAIN=f"127.0.0.1:{port}",
    )
    for args in (
        ["accounts", "create", "alice", "--password", PASSWORD],
        ["accounts", "create", "townhall", "--organization"],
        ["accounts", "allow-posting-as", "alice", "townhall"],
    ):
        done = run_herold(args, env)
        assert done.returncode == 0, done.stderr
    server = ServerProcess(["serve"], env, tmp_path / "serve.log")
    try:
        server.wait_http(f"{base}/api/v1/instance")
        redirect_uri = f"{base}/app-callback"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            app = (
                await client.post(
                    "/api/v1/apps",
                    json={"client_name": "Phanpy", "redirect_uris": redirect_uri, "scopes": "read write"},
                )
            ).json()
            query = urlencode(
                {
                    "response_type": "code",
                    "client_id": app["client_id"],
                    "redirect_uri": redirect_uri,
                    "scope": "read write",
                    "state": "popup-1",
                }
            )
            async with playwright_api.async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    page = await (await browser.new_context(viewport=DESKTOP, locale="en-GB")).new_page()
                    answer = await page.goto(f"{base}/oauth/authorize?{query}")
                    assert answer is not None
                    await page.get_by_label("User name").fill("alice")
                    await page.get_by_label("Password").fill(PASSWORD)
                    await page.get_by_role("button", name="Log in").click()
                    await expect(page.get_by_role("heading", name="Authorize Phanpy?")).to_be_visible()
                    shown = await page.request.get(f"{base}/oauth/authorize?{query}")
                    # Phanpy opens this page in a popup and needs window.opener kept.
                    assert "cross-origin-opener-policy" not in shown.headers
                    await page.get_by_label("@townhall").check()
                    await page.get_by_role("button", name="Authorize").click()
                    await page.wait_for_url(f"{redirect_uri}?*")
                    landed = parse_qs(urlsplit(page.url).query)
                finally:
                    await browser.close()
            assert landed["state"] == ["popup-1"]
            token = await client.post(
                "/oauth/token",
                data={
                    "grant_type": "authorization_code",
                    "client_id": app["client_id"],
                    "client_secret": app["client_secret"],
                    "redirect_uri": redirect_uri,
                    "code": landed["code"][0],
                },
            )
            assert token.status_code == 200, token.text
            me = await client.get(
                "/api/v1/accounts/verify_credentials",
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            )
            assert me.json()["acct"] == "townhall"
    finally:
        server.stop()
