"""Mastodon.py (pinned in the dev extras) against a real `herold serve` on loopback: the OAuth code
flow with the authorize form submitted as a browser submits it, then the calls an app makes first,
edit, history, pin, bookmark, markers and grouped notifications; with REGISTRATIONS=open, accounts
made by `create_account` follow, block, mute and edit profiles.

Mastodon.py 2.3.3 sends no PKCE challenge (tests/api/test_oauth.py drives PKCE); it is run with
version_check_mode="created", stricter than its default: it refuses every endpoint newer than
the version /api/v1/instance reports, so "4.5.0 (compatible; Herold …)" is what it must accept.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from mastodon import Mastodon, MastodonUnauthorizedError
from PIL import Image

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


def check_edit_pin_bookmark_and_markers(api: Mastodon, posted: Any) -> None:
    edited = api.status_update(posted.id, "Hello again from Mastodon.py", spoiler_text="greeting")
    assert edited.edited_at is not None and "again" in edited.content
    history = api.status_history(posted.id)
    assert [version.spoiler_text for version in history] == ["", "greeting"]
    assert api.status_source(posted.id).text == "Hello again from Mastodon.py"
    assert api.status_pin(posted.id).pinned is True
    assert api.status_unpin(posted.id).pinned is False
    assert api.status_bookmark(posted.id).bookmarked is True
    assert [status.id for status in api.bookmarks()] == [posted.id]
    assert api.status_unbookmark(posted.id).bookmarked is False
    assert api.status_mute(posted.id).muted is True
    assert api.status_unmute(posted.id).muted is False
    assert [account.acct for account in api.status_favourited_by(posted.id)] == ["alice"]
    assert [status.id for status in api.favourites()] == [posted.id]
    saved = api.markers_set("home", posted.id)
    assert str(saved["home"].last_read_id) == str(posted.id)
    assert str(api.markers_get("home")["home"].last_read_id) == str(posted.id)


def check_grouped_notifications(api: Mastodon, base: str, env: dict[str, str], posted: Any) -> None:
    """Two others like alice's post: one group of two, read as Mastodon.py reads v2."""
    for name in ("bob", "carol"):
        assert run_herold(["accounts", "create", name, "--password", PASSWORD], env).returncode == 0
        token = run_herold(["tokens", "create", name, "--scopes", "read write"], env).stdout.strip()
        Mastodon(access_token=token, api_base_url=base, version_check_mode="created").status_favourite(
            posted.id
        )
    grouped = api.grouped_notifications()
    group = grouped.notification_groups[0]
    assert group.type == "favourite" and group.notifications_count == 2
    assert str(group.status_id) == str(posted.id) and len(group.sample_account_ids) == 2
    assert {account.acct for account in grouped.accounts} == {"bob", "carol"}
    assert api.grouped_notification(group.group_key).notification_groups[0].notifications_count == 2
    assert api.notifications_unread_count().count == 2
    api.dismiss_grouped_notification(group.group_key)
    assert api.notifications() == []


async def test_mastodon_py_logs_in_posts_edits_pins_reads_notifications_and_deletes(
    tmp_path: Path, databases: DatabaseFactory
) -> None:
    port = free_port()
    base = f"http://localhost:{port}"
    env = herold_env(
        tmp_path / "data",
        await databases.new_database_url(),
        PORT=str(port),
        HTTPS="false",
        REGISTRATIONS="open",
    )
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
        check_edit_pin_bookmark_and_markers(api, posted)
        check_grouped_notifications(api, base, env, posted)
        deleted = api.status_delete(posted.id)
        assert deleted.text == "Hello again from Mastodon.py"
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

        accounts_of_people_signing_up(base, client_id, client_secret)
    finally:
        server.stop()


def accounts_of_people_signing_up(base: str, client_id: str, client_secret: str) -> None:
    """Two people sign up through Mastodon.py and use the account endpoints on each other."""

    def signed_up(name: str) -> Mastodon:
        api = Mastodon(client_id, client_secret, api_base_url=base, version_check_mode="created")
        token = api.create_account(name, PASSWORD, f"{name}@example.org", agreement=True, scopes=SCOPES)
        assert token
        return api

    bob, carol = signed_up("dora"), signed_up("erin")
    assert bob.instance_v2().registrations.enabled is True
    carol_me = carol.account_update_credentials(
        display_name="Carol C.",
        note="Newsroom",
        locked=True,
        fields=[("Web", "https://example.org")],
        avatar=_png(),
        avatar_mime_type="image/png",
        default_privacy="private",
    )
    assert carol_me.display_name == "Carol C." and carol_me.locked is True
    assert carol_me.fields[0].name == "Web" and "/media/profiles/" in carol_me.avatar
    assert carol_me.source.privacy == "private"
    bob_me = bob.account_verify_credentials()

    requested = bob.account_follow(carol_me.id, reblogs=False, notify=True)
    assert requested.requested is True and requested.following is False
    assert [account.acct for account in carol.follow_requests()] == ["dora"]
    assert carol.follow_request_authorize(bob_me.id).followed_by is True
    relation = bob.account_relationships(carol_me.id)[0]
    assert relation.following is True and relation.notifying is True and relation.showing_reblogs is False
    assert [account.acct for account in bob.account_followers(carol_me.id)] == ["dora"]
    assert [account.acct for account in carol.account_following(bob_me.id)] == ["erin"]
    posted = carol.status_post("For followers", visibility="private")
    assert [status.id for status in bob.account_statuses(carol_me.id, limit=5)] == [posted.id]

    assert bob.account_block(carol_me.id).blocking is True
    assert [account.acct for account in bob.blocks()] == ["erin"]
    assert bob.account_relationships(carol_me.id)[0].following is False
    bob.account_unblock(carol_me.id)
    assert bob.account_mute(carol_me.id, notifications=False, duration=3600).muting is True
    assert [account.acct for account in bob.mutes()] == ["erin"]
    bob.account_unmute(carol_me.id)
    bob.domain_block("spam.example")
    assert bob.domain_blocks() == ["spam.example"]
    bob.domain_unblock("spam.example")
    report = bob.report(carol_me.id, comment="Testing reports", category="other")
    assert report.target_account.id == carol_me.id
    assert bob.accounts([carol_me.id, bob_me.id])[0].acct == "erin"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()
