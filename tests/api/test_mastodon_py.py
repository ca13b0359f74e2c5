"""Mastodon.py (pinned in the dev extras) against a real `herold serve` on loopback: the OAuth code
flow with the authorize form submitted as a browser submits it, then the calls an app makes first.

Mastodon.py 2.3.3 sends no PKCE challenge (tests/api/test_oauth.py drives PKCE); it is run with
version_check_mode="created", stricter than its default: it refuses every endpoint newer than
the version /api/v1/instance reports, so "4.5.0 (compatible; Herold …)" is what it must accept.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from mastodon import Mastodon, MastodonUnauthorizedError

from tests.api.media_helpers import jpeg_with_gps
from tests.lab import DatabaseFactory
from tests.processes import ServerProcess, free_port, herold_env, run_herold

PASSWORD = "a long enough password"
REDIRECT = "com.example.herold-test://oauth"
SCOPES = ["read", "write", "follow", "push"]
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def _form_fields(html: str) -> dict[str, str]:
    return {name: value.replace("&amp;", "&") for name, value in HIDDEN.findall(html)}


def authorize_as_a_browser(url: str, username: str) -> str:
    """Open the authorize URL, log in on the way, press Authorize; the code the redirect carries."""
    with httpx.Client(headers={"Accept": "text/html"}, timeout=30) as browser:
        answer = browser.get(url)
        assert answer.status_code == 303, answer.text
        login_url = urljoin(url, answer.headers["location"])
        login_page = browser.get(login_url)
        fields = _form_fields(login_page.text)
        logged_in = browser.post(
            urljoin(url, "/login"), data={**fields, "username": username, "password": PASSWORD}
        )
        assert logged_in.status_code == 303, logged_in.text
        page = browser.get(urljoin(url, logged_in.headers["location"]))
        assert page.status_code == 200 and "Authorize" in page.text, page.text
        done = browser.post(
            urljoin(url, "/oauth/authorize"), data={**_form_fields(page.text), "decision": "authorize"}
        )
        assert done.status_code == 302, done.text
        location = done.headers["location"]
        assert location.startswith(REDIRECT)
        return parse_qs(urlsplit(location).query)["code"][0]


async def test_mastodon_py_logs_in_posts_reads_likes_and_deletes(
    tmp_path: Path, databases: DatabaseFactory
) -> None:
    port = free_port()
    base = f"http://localhost:{port}"
    env = herold_env(tmp_path / "data", await databases.new_database_url(), PORT=str(port), HTTPS="false")
    made = run_herold(["accounts", "create", "alice", "--password", PASSWORD], env)
    assert made.returncode == 0, made.stderr
    server = ServerProcess(["serve"], env, tmp_path / "serve.log")
    try:
        server.wait_http(f"{base}/api/v1/instance")
        client_id, client_secret = Mastodon.create_app(
            "Herold test", scopes=SCOPES, redirect_uris=REDIRECT, api_base_url=base
        )
        api = Mastodon(client_id, client_secret, api_base_url=base, version_check_mode="created")
        url = api.auth_request_url(redirect_uris=REDIRECT, scopes=SCOPES, state="s1", allow_http=True)
        code = authorize_as_a_browser(url, "alice")
        token = api.log_in(code=code, redirect_uri=REDIRECT, scopes=SCOPES, allow_http=True)
        assert token

        me = api.account_verify_credentials()
        assert me.acct == "alice" and me.source.privacy == "public"
        instance = api.instance()
        assert instance.version.startswith("4.5.0")
        posted = api.status_post("Hello from Mastodon.py", visibility="unlisted")
        assert posted.account.acct == "alice" and posted.visibility == "unlisted"
        home = api.timeline_home(limit=5)
        assert [status.id for status in home][:1] == [posted.id]
        liked = api.status_favourite(posted.id)
        assert liked.favourited is True
        deleted = api.status_delete(posted.id)
        assert deleted.text == "Hello from Mastodon.py"
        assert api.timeline_home(limit=5) == []
        assert api.notifications() == []

        # A picture with a description and a focal point, then a post carrying it.
        picture = tmp_path / "harbour.jpg"
        picture.write_bytes(jpeg_with_gps((120, 80), orientation=1))
        media = api.media_post(str(picture), description="The harbour at dawn", focus=(0.5, -0.25))
        assert media.type == "image" and media.description == "The harbour at dawn"
        assert media.meta.focus.x == 0.5 and media.meta.focus.y == -0.25
        with_picture = api.status_post("With a picture", media_ids=[media])
        [attached] = with_picture.media_attachments
        assert attached.id == media.id and attached.url == media.url
        served = httpx.get(media.url)
        assert served.status_code == 200 and b"Exif" not in served.content
        # (Mastodon.py's revoke_access_token insists on https; the endpoint it would call:)
        revoked = httpx.post(
            f"{base}/oauth/revoke",
            data={"client_id": client_id, "client_secret": client_secret, "token": token},
        )
        assert revoked.status_code == 200
        with pytest.raises(MastodonUnauthorizedError):
            api.account_verify_credentials()
    finally:
        server.stop()
