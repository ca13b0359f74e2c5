"""The streaming API over real sockets: a lab instance served by uvicorn on loopback, read by an
httpx Server-Sent Events reader and an aiohttp WebSocket client, as apps read it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import httpx
import pytest
import uvicorn
from sqlalchemy import select, update

from app.api.streaming.hub import QUEUE_LIMIT, TOO_SLOW, Message, StreamingHub
from app.api.streaming.streams import Stream
from app.cli import _uvicorn_config
from app.models import Account, BackgroundJob, OAuthAccessToken, Role, Visibility
from app.models.base import utcnow
from app.services.account_moderation import AccountModerationService
from app.services.announcements import Announcements
from app.services.following import FollowingService
from app.services.jobs import ANNOUNCEMENT_START
from app.services.oauth import OAuthService
from app.services.posting import PostingService
from app.services.viewer import Viewer
from tests.lab import Instance
from tests.processes import free_port
from tests.web.helpers import logged_in, make_user

EVENT_WAIT = 5.0


@dataclass
class Served:
    instance: Instance
    base_url: str

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/api/v1/streaming"

    @property
    def hub(self) -> StreamingHub:
        hub: StreamingHub = self.instance.app.state.streaming
        return hub


@pytest.fixture
async def served(instance: Instance) -> AsyncIterator[Served]:
    """The lab instance's app behind a real uvicorn on a loopback port, configured as `herold serve`
    configures it (its lifespan already runs)."""
    port = free_port()
    config = _uvicorn_config(instance.app, instance.context.settings)
    config.host, config.port, config.lifespan, config.log_level = "127.0.0.1", port, "off", "warning"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield Served(instance, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def person(instance: Instance, username: str, scopes: str = "read write follow") -> tuple[Account, str]:
    user, account = await make_user(instance, username)
    token = await OAuthService(instance.context).issue_personal_token(
        user, scopes=scopes, app_name="streaming test", acting_as=account
    )
    return account, token


async def post(instance: Instance, author: Account, text: str, **options: Any) -> int:
    created = await PostingService(instance.context).create(author, text, **options)
    return created.id


class SseReader:
    """Reads `event:`/`data:` pairs from a Server-Sent Events response."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next_event(self, timeout: float = EVENT_WAIT) -> tuple[str, str]:
        async def read() -> tuple[str, str]:
            event = data = None
            async for line in self.lines:
                if line.startswith(":"):
                    self.comments.append(line)
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and event is not None and data is not None:
                    return event, data
            raise EOFError("the stream ended")

        return await asyncio.wait_for(read(), timeout)


async def next_json(socket: aiohttp.ClientWebSocketResponse, timeout: float = EVENT_WAIT) -> dict[str, Any]:
    message = await socket.receive(timeout=timeout)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    body: dict[str, Any] = json.loads(message.data)
    return body


async def nothing_more(socket: aiohttp.ClientWebSocketResponse, seconds: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        message = await socket.receive(timeout=seconds)
        pytest.fail(f"unexpected message: {message.data}")


async def test_sse_user_stream_carries_home_posts_and_notifications(served: Served) -> None:
    instance = served.instance
    alice, token = await person(instance, "alice")
    bob, _ = await person(instance, "bob")
    await FollowingService(instance.context).follow(alice, "@bob@a.test")
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=served.base_url, timeout=10) as client,
        client.stream("GET", "/api/v1/streaming/user", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response)
        post_id = await post(instance, bob, "Hello followers")
        event, data = await reader.next_event()
        assert event == "update"
        status = json.loads(data)
        assert status["id"] == str(post_id) and "Hello followers" in status["content"]
        assert status["account"]["acct"] == "bob"

        mention_id = await post(instance, bob, "@alice are you there?")
        seen = dict([await reader.next_event(), await reader.next_event()])
        assert json.loads(seen["update"])["id"] == str(mention_id)
        notification = json.loads(seen["notification"])
        assert notification["type"] == "mention" and notification["status"]["id"] == str(mention_id)
        assert notification["id"].isdigit() and notification["account"]["acct"] == "bob"

        await PostingService(instance.context).delete(bob, post_id)
        assert await reader.next_event() == ("delete", str(post_id))
    assert reader.comments[0] == ":)"


async def test_websocket_subscriptions_follow_the_visibility_rules(served: Served) -> None:
    instance = served.instance
    alice, token = await person(instance, "alice")
    carol, _ = await person(instance, "carol")
    muted, _ = await person(instance, "muted")
    await AccountModerationService(instance.context).mute(alice, muted)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(served.ws_url, protocols=(token,)) as socket,
    ):
        # The token came as the subprotocol: the answer names it, or Chromium drops the socket.
        assert socket.protocol == token
        for subscription in (
            {"type": "subscribe", "stream": "user"},
            {"type": "subscribe", "stream": "public:local"},
            {"type": "subscribe", "stream": "hashtag", "tag": "Herold"},
        ):
            await socket.send_json(subscription)
        await asyncio.sleep(0.2)

        public_id = await post(instance, carol, "News about #herold")
        received = [await next_json(socket), await next_json(socket)]
        assert sorted(tuple(item["stream"]) for item in received) == [
            ("hashtag", "herold"),
            ("public:local",),
        ]
        assert all(item["event"] == "update" for item in received)
        assert json.loads(received[0]["payload"])["id"] == str(public_id)

        # Neither a muted account's post, nor a followers-only post alice may not see, nor an
        # unlisted one (not on public timelines), nor a post with other tags on the tag stream.
        await post(instance, muted, "Loud #herold news")
        await post(instance, carol, "Only for followers", visibility=Visibility.FOLLOWERS)
        await post(instance, carol, "Quietly", visibility=Visibility.UNLISTED)
        await nothing_more(socket)

        await socket.send_json({"type": "unsubscribe", "stream": "public:local"})
        await asyncio.sleep(0.2)
        await post(instance, carol, "Again #herold")
        only = await next_json(socket)
        assert only["stream"] == ["hashtag", "herold"]
        await nothing_more(socket)

        await socket.send_json({"type": "subscribe", "stream": "nonsense"})
        error = await next_json(socket)
        assert error == {"error": "Unknown stream type: nonsense", "status": 400}
        await socket.send_str("not json")
        assert (await next_json(socket))["error"] == "Message is not JSON"


async def test_stream_from_the_url_and_the_query_token(served: Served) -> None:
    instance = served.instance
    _, token = await person(instance, "alice")
    dave, _ = await person(instance, "dave")
    url = f"{served.ws_url}?stream=public&access_token={token}"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as socket:
        await asyncio.sleep(0.1)
        post_id = await post(instance, dave, "Federated hello")
        message = await next_json(socket)
        assert message["stream"] == ["public"] and json.loads(message["payload"])["id"] == str(post_id)


async def test_refusals_say_what_is_wrong(served: Served) -> None:
    instance = served.instance
    _, token = await person(instance, "alice")
    _, write_only = await person(instance, "wendy", scopes="write")
    async with httpx.AsyncClient(base_url=served.base_url, timeout=10) as client:
        assert (await client.get("/api/v1/streaming/health")).text == "OK"
        missing = await client.get("/api/v1/streaming/user")
        assert missing.status_code == 401 and missing.json() == {"error": "Missing access token"}
        wrong = await client.get("/api/v1/streaming/user", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        scopes = await client.get("/api/v1/streaming/public", params={"access_token": write_only})
        assert scopes.status_code == 401 and "scopes" in scopes.json()["error"]
        unknown = await client.get("/api/v1/streaming/nowhere", params={"access_token": token})
        assert unknown.status_code == 404
        no_tag = await client.get("/api/v1/streaming/hashtag", params={"access_token": token})
        assert no_tag.status_code == 400 and no_tag.json() == {"error": "No tag for stream provided"}
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"{served.ws_url}?stream=user&access_token=nope")
        assert refused.value.status == 401


async def test_websocket_messages_are_not_compressed(served: Served) -> None:
    """Browsers offer permessage-deflate; the server declines, as Mastodon's does, unless
    WEBSOCKET_COMPRESSION is set: compressing would keep zlib's state for every idle connection."""
    assert served.instance.context.settings.websocket_compression is False
    _, token = await person(served.instance, "alice")
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{served.ws_url}?stream=user&access_token={token}", compress=15) as socket,
    ):
        assert socket.compress == 0


async def test_a_revoked_token_closes_its_connections(served: Served) -> None:
    instance = served.instance
    _, token = await person(instance, "alice")
    served.hub.token_check_seconds = 0.2
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"{served.ws_url}?stream=user", headers={"Authorization": f"Bearer {token}"}
        ) as socket,
    ):
        await asyncio.sleep(0.1)
        assert len(served.hub.connections) == 1
        async with instance.context.sessions() as db:
            await db.execute(update(OAuthAccessToken).values(revoked_at=utcnow()))
            await db.commit()
        closing = await next_json(socket)
        assert closing["error"] == "The access token was revoked"
        closed = await socket.receive(timeout=EVENT_WAIT)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await asyncio.sleep(0.1)
    assert not served.hub.connections


async def test_a_client_that_falls_behind_is_dropped_not_buffered(instance: Instance) -> None:
    hub: StreamingHub = instance.app.state.streaming
    alice, _ = await person(instance, "alice")
    connection = hub.open(Viewer(account=alice, acting_ids=frozenset({alice.id})), None)
    try:
        stream = Stream("user")
        connection.streams.add(stream)
        for number in range(QUEUE_LIMIT + 1):
            connection.offer(Message(stream, "update", str(number)))
        assert connection.closed_because == TOO_SLOW
        # What was waiting is dropped; the reader sees the end at once.
        assert connection.take() == ()
    finally:
        hub.close(connection)


async def test_lists_direct_messages_and_content_filters_on_their_streams(served: Served) -> None:
    instance = served.instance
    alice, token = await person(instance, "alice")
    carol, _ = await person(instance, "carol")
    dave, dave_token = await person(instance, "dave")
    await FollowingService(instance.context).follow(alice, "@carol@a.test")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=served.base_url, timeout=10, headers=headers) as api:
        made = await api.post("/api/v1/lists", json={"title": "Newsroom"})
        list_id = made.json()["id"]
        assert (
            await api.post(f"/api/v1/lists/{list_id}/accounts", json={"account_ids": [str(carol.id)]})
        ).is_success
        for action, keyword in (("hide", "spoiler"), ("warn", "weather")):
            created = await api.post(
                "/api/v2/filters",
                json={
                    "title": keyword,
                    "context": ["public"],
                    "filter_action": action,
                    "keywords_attributes": [{"keyword": keyword}],
                },
            )
            assert created.status_code == 200, created.text
        dave_list = await api.post(
            "/api/v1/lists", json={"title": "Dave's"}, headers={"Authorization": f"Bearer {dave_token}"}
        )
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(served.ws_url, headers=headers) as socket,
    ):
        for subscription in (
            {"type": "subscribe", "stream": "list", "list": list_id},
            {"type": "subscribe", "stream": "public:local"},
            {"type": "subscribe", "stream": "direct"},
        ):
            await socket.send_json(subscription)
        await socket.send_json({"type": "subscribe", "stream": "list", "list": dave_list.json()["id"]})
        assert await next_json(socket) == {"error": "Unknown list", "status": 404}
        await asyncio.sleep(0.2)

        listed = await post(instance, carol, "From the newsroom")
        received = {
            tuple(item["stream"]): item for item in [await next_json(socket), await next_json(socket)]
        }
        assert set(received) == {("list", list_id), ("public:local",)}
        assert all(json.loads(item["payload"])["id"] == str(listed) for item in received.values())

        # Alice's filters for public timelines: hidden, or shown with the match named.
        await post(instance, dave, "A spoiler for everyone")
        await nothing_more(socket)
        warned = await post(instance, dave, "The weather today")
        message = await next_json(socket)
        status = json.loads(message["payload"])
        assert status["id"] == str(warned) and status["filtered"][0]["keyword_matches"] == ["weather"]

        direct = await post(instance, dave, "@alice just between us", visibility=Visibility.DIRECT)
        conversation = await next_json(socket)
        assert conversation["event"] == "conversation" and conversation["stream"] == ["direct"]
        payload = json.loads(conversation["payload"])
        assert payload["last_status"]["id"] == str(direct) and payload["unread"] is True
        assert [account["acct"] for account in payload["accounts"]] == ["dave"]
        await nothing_more(socket)


async def test_a_thousand_idle_websockets_on_one_process_all_get_the_post(served: Served) -> None:
    instance = served.instance
    _, token = await person(instance, "alice")
    carol, _ = await person(instance, "carol")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets: list[aiohttp.ClientWebSocketResponse] = []
        try:
            for _ in range(10):
                sockets += await asyncio.gather(
                    *(
                        session.ws_connect(f"{served.ws_url}?stream=public:local&access_token={token}")
                        for _ in range(100)
                    )
                )
            for _ in range(100):
                if len(served.hub.connections) == 1000:
                    break
                await asyncio.sleep(0.05)
            assert len(served.hub.connections) == 1000
            # An idle connection has one task (uvicorn's, which reads it) and nothing waiting.
            assert len(asyncio.all_tasks()) < 1100
            assert all(connection.waiting is None for connection in served.hub.connections)
            post_id = await post(instance, carol, "To everyone at once")
            messages = await asyncio.gather(*(next_json(socket, timeout=30) for socket in sockets))
            assert {json.loads(message["payload"])["id"] for message in messages} == {str(post_id)}
        finally:
            await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
    for _ in range(100):
        if not served.hub.connections:
            break
        await asyncio.sleep(0.05)
    assert not served.hub.connections


async def wait_for_connections(served: Served, count: int) -> None:
    for _ in range(100):
        if len(served.hub.connections) == count:
            return
        await asyncio.sleep(0.02)
    assert len(served.hub.connections) == count


async def test_filters_changed_reaches_the_owners_user_streams_only(served: Served) -> None:
    """As Mastodon: `filters_changed`, without payload, on the owner's `user` streams whenever a
    filter, its keywords or its posts change through either filters API."""
    instance = served.instance
    _, token = await person(instance, "alice")
    _, bob_token = await person(instance, "bob")
    headers = {"Authorization": f"Bearer {token}"}
    changed = {"stream": ["user"], "event": "filters_changed"}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{served.ws_url}?stream=user", headers=headers) as socket,
        session.ws_connect(f"{served.ws_url}?stream=user&access_token={bob_token}") as bobs,
        session.ws_connect(f"{served.ws_url}?stream=user:notification&access_token={token}") as notifications,
        httpx.AsyncClient(base_url=served.base_url, timeout=10, headers=headers) as api,
        api.stream("GET", "/api/v1/streaming/user") as sse,
    ):
        await wait_for_connections(served, 4)
        reader = SseReader(sse)
        created = await api.post(
            "/api/v2/filters",
            json={"title": "Spoilers", "context": ["home"], "keywords_attributes": [{"keyword": "finale"}]},
        )
        assert created.status_code == 200, created.text
        assert await next_json(socket) == changed
        # Server-Sent Events write the absent payload as Mastodon's server does.
        assert await reader.next_event() == ("filters_changed", "undefined")

        filter_id = created.json()["id"]
        added = await api.post(f"/api/v2/filters/{filter_id}/keywords", json={"keyword": "ending"})
        assert added.status_code == 200, added.text
        assert await next_json(socket) == changed
        v1 = await api.post("/api/v1/filters", data={"phrase": "cake", "context[]": "home"})
        assert v1.status_code == 200, v1.text
        assert await next_json(socket) == changed
        assert (await api.delete(f"/api/v2/filters/{filter_id}")).status_code == 200
        assert await next_json(socket) == changed
        # A refused change changes nothing and says nothing.
        assert (await api.delete(f"/api/v2/filters/{filter_id}")).status_code == 404
        await nothing_more(socket)
        await nothing_more(bobs, 0.1)
        await nothing_more(notifications, 0.1)


async def test_announcements_reach_every_user_stream(served: Served) -> None:
    """An admin publishes in Admin → Announcements: every `user` stream gets `announcement`, then
    `announcement.reaction` when someone reacts and `announcement.delete` when it is withdrawn."""
    instance = served.instance
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    _, token = await person(instance, "alice")
    _, bob_token = await person(instance, "bob")
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{served.ws_url}?stream=user&access_token={token}") as socket,
        session.ws_connect(f"{served.ws_url}?stream=user&access_token={bob_token}") as bobs,
        session.ws_connect(f"{served.ws_url}?stream=public:local&access_token={token}") as public,
    ):
        await wait_for_connections(served, 3)
        assert (
            await admin.post("/admin/announcements", {"text": "Maintenance on #Friday"})
        ).status_code == 303
        for reader in (socket, bobs):
            message = await next_json(reader)
            assert message["stream"] == ["user"] and message["event"] == "announcement"
            announcement = json.loads(message["payload"])
            assert "Maintenance on" in announcement["content"] and announcement["reactions"] == []
        # One that starts later is not in force: the apps hear of it when it starts, from a job
        # the worker runs then.
        await admin.post("/admin/announcements", {"text": "Later", "starts_at": "2999-01-01T10:00"})
        await nothing_more(socket, 0.3)
        async with instance.context.sessions() as db:
            job = (
                await db.scalars(select(BackgroundJob).where(BackgroundJob.kind == ANNOUNCEMENT_START))
            ).one()
        assert job.next_attempt_at.year == 2999
        # The server's own worker starts it when its time comes. Nothing is heard until shortly
        # before then (measured from the start, not from the publishing: under load the
        # publishing itself may take a while, and its own waiting must not be counted).
        starts_at = utcnow() + timedelta(seconds=3)
        soon = await Announcements(instance.context, Viewer.system()).publish("Soon", starts_at=starts_at)
        quiet_until = (starts_at - utcnow()).total_seconds() - 0.3
        if quiet_until > 0.2:
            await nothing_more(socket, quiet_until)
        later = await next_json(socket, timeout=EVENT_WAIT + 10)
        assert later["event"] == "announcement" and json.loads(later["payload"])["id"] == str(soon.id)
        assert (await next_json(bobs))["event"] == "announcement"

        announcement_id = announcement["id"]
        async with httpx.AsyncClient(base_url=served.base_url, timeout=10) as api:
            reacted = await api.put(
                f"/api/v1/announcements/{announcement_id}/reactions/👍",
                headers={"Authorization": f"Bearer {bob_token}"},
            )
            assert reacted.status_code == 200, reacted.text
        for reader in (socket, bobs):
            message = await next_json(reader)
            assert message["event"] == "announcement.reaction"
            assert json.loads(message["payload"]) == {
                "name": "👍",
                "count": 1,
                "announcement_id": announcement_id,
            }

        page = await admin.post(f"/admin/announcements/{announcement_id}/delete")
        assert page.status_code == 303
        for reader in (socket, bobs):
            assert await next_json(reader) == {
                "stream": ["user"],
                "event": "announcement.delete",
                "payload": announcement_id,
            }
        await nothing_more(public, 0.1)
    await admin.aclose()
