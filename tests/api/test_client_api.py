"""The endpoints apps call at login and on their main screens, with the shapes Mastodon sends."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlmodel import select

from app.models import Post, Role
from app.services.staff import StaffService
from tests.api.oauth_helpers import user_token
from tests.lab import Instance
from tests.web.helpers import Browser, logged_in, make_user, new_client

MILLISECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def token_for(instance: Instance, username: str, **kwargs: Any) -> str:
    browser = await logged_in(instance, username)
    try:
        return await user_token(instance.client, browser, **kwargs)
    finally:
        await browser.aclose()


async def post_status(client: httpx.AsyncClient, token: str, text: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/statuses", json={"status": text, **extra}, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_instance_says_mastodon_4_5_compatible_with_every_configuration_part(
    instance: Instance,
) -> None:
    v2 = (await instance.client.get("/api/v2/instance")).json()
    assert v2["version"].startswith("4.5.0 (compatible; Herold ")
    assert v2["api_versions"] == {"mastodon": 7}
    for part in ("urls", "statuses", "media_attachments", "polls", "accounts", "translation"):
        assert part in v2["configuration"]
    assert v2["configuration"]["urls"]["streaming"] == "ws://a.test"
    assert v2["registrations"]["enabled"] is False
    v1 = (await instance.client.get("/api/v1/instance")).json()
    assert v1["uri"] == "a.test" and v1["version"] == v2["version"]
    assert (await instance.client.get("/api/v1/custom_emojis")).json() == []


async def test_verify_credentials_shapes_and_the_organisation_token(instance: Instance) -> None:
    client = instance.client
    token = await token_for(instance, "alice")
    me = (await client.get("/api/v1/accounts/verify_credentials", headers=bearer(token))).json()
    assert me["acct"] == "alice" and me["id"].isdigit()
    assert me["avatar"].startswith("http://a.test/static/") and me["header_static"]
    assert MILLISECONDS.fullmatch(me["created_at"])
    for field in ("group", "limited", "bot", "discoverable", "fields", "emojis", "roles", "locked"):
        assert field in me
    assert me["source"]["privacy"] == "public" and "sensitive" in me["source"]
    same = (await client.get(f"/api/v1/accounts/{me['id']}")).json()
    assert same["acct"] == "alice" and "source" not in same
    looked_up = (await client.get("/api/v1/accounts/lookup", params={"acct": "alice@a.test"})).json()
    assert looked_up["id"] == me["id"]
    for missing in ("/api/v1/accounts/12345", "/api/v1/accounts/abc", "/api/v1/accounts/lookup?acct=nobody"):
        answer = await client.get(missing)
        assert answer.status_code == 404 and "error" in answer.json()

    boss, _ = await make_user(instance, "boss", role=Role.ADMIN)
    _, townhall = await make_user(instance, "townhall", organization=True)
    staff = StaffService(instance.context)
    alice_user = next(member.user for member in await staff.members() if member.account.username == "alice")
    await staff.grant_delegate(townhall.id, alice_user.id, by=boss)
    alice = Browser(new_client(instance))
    await alice.login("alice")
    org_token = await user_token(client, alice, account_id=townhall.id)
    await alice.aclose()
    org = (await client.get("/api/v1/accounts/verify_credentials", headers=bearer(org_token))).json()
    assert org["acct"] == "townhall"
    posted = await post_status(client, org_token, "Council meets on Monday")
    assert posted["account"]["acct"] == "townhall"
    async with instance.context.sessions() as session:
        stored = await session.get(Post, int(posted["id"]))
    assert stored is not None and stored.written_by_user_id == alice_user.id


async def test_posting_reading_liking_boosting_and_deleting(instance: Instance) -> None:
    client = instance.client
    alice = await token_for(instance, "alice")
    bob = await token_for(instance, "bob")
    status = await post_status(client, alice, "Hello #fediverse", spoiler_text="greeting", language="en")
    assert status["id"].isdigit() and MILLISECONDS.fullmatch(status["created_at"])
    assert status["spoiler_text"] == "greeting" and status["sensitive"] is True
    assert status["tags"][0]["name"] == "fediverse" and status["visibility"] == "public"
    for field in (
        "favourited",
        "reblogged",
        "muted",
        "bookmarked",
        "filtered",
        "card",
        "poll",
        "application",
    ):
        assert field in status

    liked = (await client.post(f"/api/v1/statuses/{status['id']}/favourite", headers=bearer(bob))).json()
    assert liked["favourited"] is True and liked["favourites_count"] == 1
    boosted = (await client.post(f"/api/v1/statuses/{status['id']}/reblog", headers=bearer(bob))).json()
    assert boosted["reblog"]["id"] == status["id"] and boosted["account"]["acct"] == "bob"
    unliked = (await client.post(f"/api/v1/statuses/{status['id']}/unfavourite", headers=bearer(bob))).json()
    assert unliked["favourited"] is False
    reply = await post_status(client, bob, "@alice hi back", in_reply_to_id=status["id"])
    thread = (await client.get(f"/api/v1/statuses/{status['id']}/context", headers=bearer(bob))).json()
    assert [item["id"] for item in thread["descendants"]] == [reply["id"]]

    notes = (await client.get("/api/v1/notifications", headers=bearer(alice))).json()
    assert {"favourite", "reblog", "mention"} <= {note["type"] for note in notes}
    only_mentions = (
        await client.get("/api/v1/notifications", params={"types[]": "mention"}, headers=bearer(alice))
    ).json()
    assert [note["type"] for note in only_mentions] == ["mention"]
    assert only_mentions[0]["status"]["id"] == reply["id"]
    without_likes = (
        await client.get(
            "/api/v1/notifications", params={"exclude_types[]": "favourite"}, headers=bearer(alice)
        )
    ).json()
    assert (
        "favourite" not in {note["type"] for note in without_likes} and len(without_likes) == len(notes) - 1
    )
    bob_id = reply["account"]["id"]
    from_bob = (
        await client.get("/api/v1/notifications", params={"account_id": bob_id}, headers=bearer(alice))
    ).json()
    assert len(from_bob) == len(notes)
    from_nobody = await client.get("/api/v1/notifications", params={"account_id": "1"}, headers=bearer(alice))
    assert from_nobody.json() == []

    # Another person's post cannot be deleted: 404, as if it were not there.
    assert (await client.delete(f"/api/v1/statuses/{status['id']}", headers=bearer(bob))).status_code == 404
    deleted = await client.delete(f"/api/v1/statuses/{status['id']}", headers=bearer(alice))
    assert deleted.status_code == 200 and deleted.json()["text"] == "Hello #fediverse"
    assert (await client.get(f"/api/v1/statuses/{status['id']}")).status_code == 404


async def test_idempotency_key_gives_the_same_status(instance: Instance) -> None:
    client = instance.client
    token = await token_for(instance, "alice")
    headers = {**bearer(token), "Idempotency-Key": "abc-123"}
    first = await client.post("/api/v1/statuses", data={"status": "Only once"}, headers=headers)
    second = await client.post("/api/v1/statuses", data={"status": "Only once"}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    async with instance.context.sessions() as session:
        assert len((await session.scalars(select(Post).where(Post.content_source == "Only once"))).all()) == 1


async def test_timelines_page_with_link_headers_that_keep_the_other_parameters(instance: Instance) -> None:
    client = instance.client
    token = await token_for(instance, "alice")
    made = [await post_status(client, token, f"post number {number}") for number in range(5)]
    ids = [status["id"] for status in reversed(made)]
    first = await client.get("/api/v1/timelines/home", params={"limit": 2}, headers=bearer(token))
    assert [status["id"] for status in first.json()] == ids[:2]
    public = await client.get("/api/v1/timelines/public", params={"local": "true", "limit": 2})
    assert [status["id"] for status in public.json()] == ids[:2]
    link = public.headers["link"]
    assert "local=true" in link and f"max_id={ids[1]}" in link and f"min_id={ids[0]}" in link
    older = await client.get(
        "/api/v1/timelines/public", params={"local": "true", "limit": 2, "max_id": ids[1]}
    )
    assert [status["id"] for status in older.json()] == ids[2:4]
    newer = await client.get("/api/v1/timelines/home", params={"min_id": ids[2]}, headers=bearer(token))
    assert [status["id"] for status in newer.json()] == ids[:2]
    empty = await client.get("/api/v1/timelines/public", params={"max_id": "1"})
    assert empty.json() == [] and "link" not in empty.headers


async def test_scopes_tokens_and_bad_input(instance: Instance) -> None:
    client = instance.client
    read_only = await token_for(instance, "alice", scope="read")
    refused = await client.post("/api/v1/statuses", json={"status": "hi"}, headers=bearer(read_only))
    assert refused.status_code == 403
    assert refused.json() == {"error": "This action is outside the authorized scopes"}
    assert (await client.get("/api/v1/timelines/home")).status_code == 401
    assert (await client.get("/api/v1/timelines/home", headers=bearer("made-up"))).status_code == 401
    token = await token_for(instance, "bob")
    cases = [
        ({"status": "x" * 600}, "status"),
        ({"status": "hi", "visibility": "everyone"}, "visibility"),
        ({"status": ["a", "b"]}, "status"),
        ({"status": "hi", "sensitive": "perhaps"}, "sensitive"),
    ]
    for body, field in cases:
        answer = await client.post("/api/v1/statuses", json=body, headers=bearer(token))
        assert answer.status_code == 422, (body, answer.text)
        assert field in answer.json()["error"] or "characters" in answer.json()["error"]
    for path in ("/api/v1/statuses/abc", "/api/v1/statuses/99999999999", "/api/v1/statuses/1" + "0" * 30):
        assert (await client.get(path, headers=bearer(token))).status_code == 404
    for params in ({"max_id": "abc"}, {"limit": "lots"}):
        answer = await client.get("/api/v1/timelines/home", params=params, headers=bearer(token))
        assert answer.status_code == 422 and "error" in answer.json()
    too_many = [("types[]", "mention")] * 30
    answer = await client.get("/api/v1/notifications", params=too_many, headers=bearer(token))
    assert answer.status_code == 422
    unknown = await client.get("/api/v1/notifications", params={"types[]": "gossip"}, headers=bearer(token))
    assert unknown.status_code == 422 and "gossip" in unknown.json()["error"]


async def test_a_followers_only_post_stays_hidden_from_other_tokens(instance: Instance) -> None:
    client = instance.client
    alice = await token_for(instance, "alice")
    bob = await token_for(instance, "bob")
    secret = await post_status(client, alice, "for followers", visibility="private")
    assert secret["visibility"] == "private"
    assert (await client.get(f"/api/v1/statuses/{secret['id']}", headers=bearer(bob))).status_code == 404
    assert (await client.get(f"/api/v1/statuses/{secret['id']}")).status_code == 404
    liked = await client.post(f"/api/v1/statuses/{secret['id']}/favourite", headers=bearer(bob))
    assert liked.status_code == 404
    public = (await client.get("/api/v1/timelines/public", headers=bearer(bob))).json()
    assert secret["id"] not in [status["id"] for status in public]
    assert (await client.get(f"/api/v1/statuses/{secret['id']}", headers=bearer(alice))).status_code == 200


async def test_rate_limit_headers_and_429(instance: Instance) -> None:
    instance.context.rate_limits.api_requests.limit = 3
    answers = [await instance.client.get("/api/v1/custom_emojis") for _ in range(4)]
    assert [answer.headers["x-ratelimit-remaining"] for answer in answers[:3]] == ["2", "1", "0"]
    assert answers[3].status_code == 429 and "error" in answers[3].json()
    assert (
        MILLISECONDS.fullmatch(answers[0].headers["x-ratelimit-reset"])
        or answers[0].headers["x-ratelimit-reset"]
    )
