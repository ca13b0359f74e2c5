"""Mastodon.py's `stream_user` against a real `herold serve` with two web processes and its worker
process: the mention a remote server delivered to the inbox (processed by the worker process),
a post written by another process (the command line), a filter created and an announcement
published through whichever web process took the request, reach the app's open stream."""

from __future__ import annotations

import asyncio
import queue
from pathlib import Path
from typing import Any

import httpx
from mastodon import Mastodon, StreamListener

from tests.lab import DatabaseFactory
from tests.processes import ServerProcess, free_port, herold_env
from tests.remote_actor import Remote, eventually, herold, remote
from tests.web.helpers import csrf_from

__all__ = ["remote"]  # the fixture, used by name below

ADMIN_PASSWORD = "correct horse battery staple"


async def log_in(client: httpx.AsyncClient, username: str, password: str) -> None:
    page = await client.get("/login")
    answer = await client.post(
        "/login", data={"csrf_token": csrf_from(page.text), "username": username, "password": password}
    )
    assert answer.status_code == 303, answer.text


class Collected(StreamListener):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def on_update(self, status: Any) -> None:
        self.events.put(("update", status))

    def on_notification(self, notification: Any) -> None:
        self.events.put(("notification", notification))

    def on_filters_changed(self) -> None:
        self.events.put(("filters_changed", None))

    def on_announcement(self, announcement: Any) -> None:
        self.events.put(("announcement", announcement))


async def next_event(listener: Collected, kind: str, seconds: float = 30.0) -> Any:
    """The next event of `kind` (others are skipped), waited for off the event loop."""

    def wait() -> Any:
        while True:
            found, payload = listener.events.get(timeout=seconds)
            if found == kind:
                return payload

    return await asyncio.to_thread(wait)


async def test_stream_user_gets_a_remote_mention_and_a_post_from_another_process(
    tmp_path: Path, databases: DatabaseFactory, remote: Remote
) -> None:
    port = free_port()
    domain = f"127.0.0.1:{port}"
    base = f"http://{domain}"
    env = herold_env(
        tmp_path / "data",
        await databases.new_database_url(),
        PORT=str(port),
        LOCAL_DOMAIN=domain,
        HTTPS="false",
        ALLOWED_PRIVATE_ADDRESSES="127.0.0.0/8",
        WEB_PROCESSES="2",
    )
    await herold(["migrate"], env)
    for name in ("alice", "bob"):
        await herold(["accounts", "create", name, "--password", "correct horse battery staple"], env)
    await herold(["follow", "alice", f"@bob@{domain}"], env)
    await herold(["accounts", "create", "boss", "--role", "admin", "--password", ADMIN_PASSWORD], env)
    token = (await herold(["tokens", "create", "alice", "--scopes", "read write follow"], env)).strip()
    token = token.splitlines()[-1]
    server = ServerProcess(["serve"], env, tmp_path / "serve.log")
    handle = None
    try:
        server.wait_http(f"{base}/health")
        await eventually(
            lambda: server.output().count("Application startup complete") == 2, "both web processes"
        )
        api = Mastodon(access_token=token, api_base_url=base, version_check_mode="created")
        listener = Collected()
        handle = api.stream_user(listener, run_async=True, reconnect_async=False)
        await eventually(lambda: handle.is_receiving(), "the stream to open")

        # A remote server mentions alice: the web process that takes the POST queues it, the
        # worker process handles it, and the stream (on either web process) hears of it.
        inbox = f"{base}/users/alice/inbox"
        note_id = f"{remote.actor}/statuses/1"
        create = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{note_id}/activity",
            "type": "Create",
            "actor": remote.actor,
            "to": [f"{base}/users/alice"],
            "object": {
                "id": note_id,
                "type": "Note",
                "attributedTo": remote.actor,
                "to": [f"{base}/users/alice"],
                "content": '<p><a href="http://x/users/alice">@alice</a> can you confirm the date?</p>',
                "tag": [{"type": "Mention", "href": f"{base}/users/alice", "name": f"@alice@{domain}"}],
                "published": "2026-12-07T10:00:00Z",
            },
        }
        body, headers = remote.signed_post(inbox, create)
        async with httpx.AsyncClient(timeout=20) as client:
            accepted = await client.post(inbox, content=body, headers=headers)
        assert accepted.status_code == 202, accepted.text
        mention = await next_event(listener, "notification")
        assert mention.type == "mention" and mention.account.url == remote.actor
        assert "confirm the date" in mention.status.content

        # Bob posts from the command line, a process of its own: alice follows him.
        await herold(["post", "bob", "Minutes of today's meeting are online"], env)
        update = await next_event(listener, "update")
        assert update.account.acct == "bob" and "Minutes of today" in update.content

        # Alice's app adds a filter, and an administrator publishes an announcement in the web
        # interface: each request reaches one web process or the other.
        async with httpx.AsyncClient(base_url=base, timeout=20) as client:
            created = await client.post(
                "/api/v2/filters",
                json={
                    "title": "Spoilers",
                    "context": ["home"],
                    "keywords_attributes": [{"keyword": "finale"}],
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            assert created.status_code == 200, created.text
            assert await next_event(listener, "filters_changed") is None
            await log_in(client, "boss", ADMIN_PASSWORD)
            page = await client.get("/admin/announcements")
            published = await client.post(
                "/admin/announcements",
                data={"csrf_token": csrf_from(page.text), "text": "Fire drill at noon"},
            )
            assert published.status_code == 303, published.text
        announcement = await next_event(listener, "announcement")
        assert "Fire drill at noon" in announcement.content and announcement.reactions == []
    finally:
        if handle is not None:
            handle.close()
        server.stop()
    assert "Traceback" not in server.output()
