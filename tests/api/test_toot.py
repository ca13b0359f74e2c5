"""The `toot` command-line client (pinned in the dev extras) against a real `herold serve`.

`toot login` registers an app with the out-of-band redirect, prints the authorize URL and waits
for a typed code: the test answers its prompts on stdin, opens the URL as a browser would (the
login form, then Authorize), reads the code from the page Herold shows, and types it in. Then
toot posts, reads the home timeline and notifications, searches, follows and makes a list.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

import httpx

from tests.api.test_mastodon_py import PASSWORD, _form_fields
from tests.lab import DatabaseFactory
from tests.processes import ServerProcess, free_port, herold_env, run_herold

TOOT = str(Path(sys.executable).with_name("toot"))
CODE = re.compile(r'id="authorization-code" readonly value="([^"]+)"')


def code_from_browser(url: str, username: str) -> str:
    """Open the authorize URL, log in on the way, press Authorize; the code the page shows."""
    with httpx.Client(headers={"Accept": "text/html"}, timeout=30) as browser:
        answer = browser.get(url)
        assert answer.status_code == 303, answer.text
        login_page = browser.get(urljoin(url, answer.headers["location"]))
        logged_in = browser.post(
            urljoin(url, "/login"),
            data={**_form_fields(login_page.text), "username": username, "password": PASSWORD},
        )
        assert logged_in.status_code == 303, logged_in.text
        page = browser.get(urljoin(url, logged_in.headers["location"]))
        assert page.status_code == 200 and "Authorize" in page.text, page.text
        done = browser.post(
            urljoin(url, "/oauth/authorize"), data={**_form_fields(page.text), "decision": "authorize"}
        )
        assert done.status_code == 200, done.text
        found = CODE.search(done.text)
        assert found, done.text
        return found.group(1)


def toot(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([TOOT, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"toot {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


async def test_toot_logs_in_posts_and_reads(tmp_path: Path, databases: DatabaseFactory) -> None:
    port = free_port()
    base = f"http://localhost:{port}"
    env = herold_env(tmp_path / "data", await databases.new_database_url(), PORT=str(port), HTTPS="false")
    for name in ("alice", "bob"):
        made = run_herold(["accounts", "create", name, "--password", PASSWORD], env)
        assert made.returncode == 0, made.stderr
    server = ServerProcess(["serve"], env, tmp_path / "serve.log")
    toot_env = dict(env, XDG_CONFIG_HOME=str(tmp_path / "config"), NO_COLOR="1", COLUMNS="120")
    try:
        server.wait_http(f"{base}/api/v1/instance")
        domain = httpx.get(f"{base}/api/v1/instance").json()["uri"]

        login = subprocess.Popen(
            [TOOT, "login", "--instance", base],
            env=toot_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert login.stdin is not None and login.stdout is not None
        url = ""
        for line in login.stdout:
            if line.startswith(base):
                url = line.strip()
                break
        assert "/oauth/authorize/?" in url, url
        code = code_from_browser(url, "alice")
        # "Open link in default browser?" no; then the code.
        output, _ = login.communicate(f"n\n{code}\n", timeout=60)
        assert login.returncode == 0, output
        assert "Successfully logged in" in output

        posted = toot(toot_env, "post", "Hello from toot #herold")
        assert "Toot posted" in posted
        assert "Hello from toot" in toot(toot_env, "timeline", "--once")

        followed = run_herold(["follow", "bob", f"@alice@{domain}"], env)
        assert followed.returncode == 0, followed.stderr
        notifications = toot(toot_env, "notifications")
        assert "bob" in notifications and "follow" in notifications.lower()

        found = toot(toot_env, "search", "bob")
        assert "@bob" in found
        toot(toot_env, "follow", f"bob@{domain}")
        toot(toot_env, "lists", "create", "Council")
        toot(toot_env, "lists", "add", "Council", f"bob@{domain}")
        assert "@bob" in toot(toot_env, "lists", "accounts", "Council")
        toot(toot_env, "tags", "follow", "parks")
        assert "parks" in toot(toot_env, "tags", "followed")
    finally:
        server.stop()
