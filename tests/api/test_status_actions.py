"""Edit, history, source, pin, bookmark, conversation mute, favourited_by/reblogged_by, and the
bookmarks and favourites lists: shapes, scopes, and nothing shown that the token may not see."""

from __future__ import annotations

from app.models import Role
from app.services.oauth import OAuthService
from app.services.staff import StaffService
from tests.api.api_helpers import another_token, bearer, person, post
from tests.lab import Instance
from tests.web.helpers import make_user


async def test_edit_keeps_history_and_source(instance: Instance) -> None:
    client = instance.client
    alice_account, alice = await person(instance, "alice")
    _, bob = await person(instance, "bob")
    status = await post(client, alice, "First #draft", spoiler_text="cw", language="en")
    assert status["edited_at"] is None
    edited = await client.put(
        f"/api/v1/statuses/{status['id']}",
        json={"status": "Second version #final", "spoiler_text": "", "sensitive": False, "language": "de"},
        headers=alice,
    )
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert "Second version" in body["content"] and body["edited_at"] is not None
    assert body["language"] == "de" and body["spoiler_text"] == "" and body["sensitive"] is False
    assert [tag["name"] for tag in body["tags"]] == ["final"]

    history = (await client.get(f"/api/v1/statuses/{status['id']}/history")).json()
    assert len(history) == 2
    assert "First" in history[0]["content"] and history[0]["spoiler_text"] == "cw"
    assert "Second" in history[1]["content"] and history[1]["account"]["acct"] == "alice"
    assert history[0]["created_at"] <= history[1]["created_at"]
    source = (await client.get(f"/api/v1/statuses/{status['id']}/source", headers=alice)).json()
    assert source == {"id": status["id"], "text": "Second version #final", "spoiler_text": ""}

    # Someone else's post: seen but not changed (403); its source is not theirs to read (404).
    refused = await client.put(f"/api/v1/statuses/{status['id']}", json={"status": "mine"}, headers=bob)
    assert refused.status_code == 403 and refused.json()["error"]
    assert (await client.get(f"/api/v1/statuses/{status['id']}/source", headers=bob)).status_code == 404
    missing = await client.put(f"/api/v1/statuses/{status['id']}", json={}, headers=alice)
    assert missing.status_code == 422 and "status" in missing.json()["error"]
    bad_language = await client.put(
        f"/api/v1/statuses/{status['id']}", json={"status": "x", "language": "not a language"}, headers=alice
    )
    assert bad_language.status_code == 422
    read_only = await another_token(instance, alice_account, scopes="read")
    assert (
        await client.put(f"/api/v1/statuses/{status['id']}", json={"status": "x"}, headers=read_only)
    ).status_code == 403
    assert (await client.put(f"/api/v1/statuses/{status['id']}", json={"status": "x"})).status_code == 401


async def test_private_posts_are_not_found_by_those_who_may_not_see_them(instance: Instance) -> None:
    client = instance.client
    _, alice = await person(instance, "alice")
    _, bob = await person(instance, "bob")
    secret = await post(client, alice, "followers only", visibility="private")
    for method, path in (
        ("GET", "history"),
        ("GET", "favourited_by"),
        ("GET", "reblogged_by"),
        ("POST", "bookmark"),
        ("POST", "mute"),
        ("POST", "pin"),
    ):
        answer = await client.request(method, f"/api/v1/statuses/{secret['id']}/{path}", headers=bob)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json() == {"error": "Record not found"}
    unknown = await client.put("/api/v1/statuses/123456789", json={"status": "x"}, headers=alice)
    assert unknown.status_code == 404
    assert (await client.get("/api/v1/statuses/abc/history")).status_code == 404


async def test_pin_unpin_and_pinned_flag(instance: Instance) -> None:
    client = instance.client
    _, alice = await person(instance, "alice")
    _, bob = await person(instance, "bob")
    status = await post(client, alice, "Pin me")
    assert status["pinned"] is False
    pinned = await client.post(f"/api/v1/statuses/{status['id']}/pin", headers=alice)
    assert pinned.status_code == 200 and pinned.json()["pinned"] is True
    again = await client.post(f"/api/v1/statuses/{status['id']}/pin", headers=alice)
    assert again.json()["pinned"] is True
    # Not bob's to pin, and bob is never told whether alice pinned it.
    refused = await client.post(f"/api/v1/statuses/{status['id']}/pin", headers=bob)
    assert refused.status_code == 422 and "pinned" in refused.json()["error"]
    assert "pinned" not in (await client.get(f"/api/v1/statuses/{status['id']}", headers=bob)).json()
    unpinned = await client.post(f"/api/v1/statuses/{status['id']}/unpin", headers=alice)
    assert unpinned.json()["pinned"] is False
    direct = await post(client, alice, "@bob psst", visibility="direct")
    assert (await client.post(f"/api/v1/statuses/{direct['id']}/pin", headers=alice)).status_code == 422


async def test_bookmarks_and_favourites_lists_page_with_link(instance: Instance) -> None:
    client = instance.client
    _, alice = await person(instance, "alice")
    bob_account, bob = await person(instance, "bob")
    posted = [await post(client, alice, f"post {number}") for number in range(3)]
    for status in posted:
        marked = await client.post(f"/api/v1/statuses/{status['id']}/bookmark", headers=bob)
        assert marked.status_code == 200 and marked.json()["bookmarked"] is True
        await client.post(f"/api/v1/statuses/{status['id']}/favourite", headers=bob)
    assert (await client.get(f"/api/v1/statuses/{posted[0]['id']}", headers=alice)).json()[
        "bookmarked"
    ] is False

    first = await client.get("/api/v1/bookmarks", params={"limit": 2}, headers=bob)
    assert [item["id"] for item in first.json()] == [posted[2]["id"], posted[1]["id"]]
    assert 'rel="next"' in first.headers["link"] and "limit=2" in first.headers["link"]
    next_url = first.headers["link"].split(">")[0].lstrip("<")
    second = await client.get(next_url, headers=bob)
    assert [item["id"] for item in second.json()] == [posted[0]["id"]]
    liked = (await client.get("/api/v1/favourites", headers=bob)).json()
    assert [item["id"] for item in liked] == [item["id"] for item in reversed(posted)]
    assert all(item["favourited"] and item["bookmarked"] for item in liked)

    await client.post(f"/api/v1/statuses/{posted[2]['id']}/unbookmark", headers=bob)
    assert len((await client.get("/api/v1/bookmarks", headers=bob)).json()) == 2
    # Alice deletes a post: it leaves bob's lists.
    await client.delete(f"/api/v1/statuses/{posted[1]['id']}", headers=alice)
    assert [item["id"] for item in (await client.get("/api/v1/bookmarks", headers=bob)).json()] == [
        posted[0]["id"]
    ]
    assert (await client.get("/api/v1/bookmarks")).status_code == 401
    read_statuses = await another_token(instance, bob_account, scopes="read:statuses")
    assert (await client.get("/api/v1/bookmarks", headers=read_statuses)).status_code == 403
    assert (await client.get("/api/v1/bookmarks", params={"max_id": "x"}, headers=bob)).status_code == 422


async def test_favourited_by_and_reblogged_by(instance: Instance) -> None:
    client = instance.client
    _, alice = await person(instance, "alice")
    _, bob = await person(instance, "bob")
    _, carol = await person(instance, "carol")
    status = await post(client, alice, "Like and boost me")
    for auth in (bob, carol):
        await client.post(f"/api/v1/statuses/{status['id']}/favourite", headers=auth)
        await client.post(f"/api/v1/statuses/{status['id']}/reblog", headers=auth)
    liked_by = await client.get(f"/api/v1/statuses/{status['id']}/favourited_by", params={"limit": 1})
    assert [account["acct"] for account in liked_by.json()] == ["carol"]
    assert 'rel="next"' in liked_by.headers["link"]
    older = await client.get(liked_by.headers["link"].split(">")[0].lstrip("<"))
    assert [account["acct"] for account in older.json()] == ["bob"]
    boosted_by = (await client.get(f"/api/v1/statuses/{status['id']}/reblogged_by", headers=alice)).json()
    assert [account["acct"] for account in boosted_by] == ["carol", "bob"]
    # Bookmarking a boost (by its id, as a timeline lists it) bookmarks the boosted post.
    boost = (await client.get("/api/v1/timelines/home", headers=bob)).json()[0]
    assert boost["reblog"]["id"] == status["id"]
    marked = (await client.post(f"/api/v1/statuses/{boost['id']}/bookmark", headers=bob)).json()
    assert marked["reblog"]["bookmarked"] is True
    assert [item["id"] for item in (await client.get("/api/v1/bookmarks", headers=bob)).json()] == [
        status["id"]
    ]


async def test_muted_conversation_sends_no_notifications(instance: Instance) -> None:
    client = instance.client
    _, alice = await person(instance, "alice")
    _, bob = await person(instance, "bob")
    root = await post(client, alice, "A thread")
    muted = await client.post(f"/api/v1/statuses/{root['id']}/mute", headers=alice)
    assert muted.status_code == 200 and muted.json()["muted"] is True
    reply = await post(client, bob, "@alice a reply", in_reply_to_id=root["id"])
    await client.post(f"/api/v1/statuses/{root['id']}/favourite", headers=bob)
    elsewhere = await post(client, bob, "@alice elsewhere")
    notes = (await client.get("/api/v1/notifications", headers=alice)).json()
    assert [note["status"]["id"] for note in notes] == [elsewhere["id"]]
    assert (await client.get(f"/api/v1/statuses/{reply['id']}", headers=alice)).json()["muted"] is True
    unmuted = await client.post(f"/api/v1/statuses/{root['id']}/unmute", headers=alice)
    assert unmuted.json()["muted"] is False
    assert len((await client.get("/api/v1/notifications", headers=alice)).json()) == 3


async def test_an_organisation_post_is_edited_by_its_team(instance: Instance) -> None:
    client = instance.client
    boss, _ = await make_user(instance, "boss", role=Role.ADMIN)
    _, townhall = await make_user(instance, "townhall", organization=True)
    _, alice = await person(instance, "alice")
    staff = StaffService(instance.context)
    alice_user = next(m.user for m in await staff.members() if m.account.username == "alice")
    await staff.grant_delegate(townhall.id, alice_user.id, by=boss)
    org = bearer(
        await OAuthService(instance.context).issue_personal_token(
            alice_user, scopes="read write", app_name="tests", acting_as=townhall
        )
    )
    status = await post(client, org, "Council meets Monday")
    edited = await client.put(
        f"/api/v1/statuses/{status['id']}", json={"status": "Council meets Tuesday"}, headers=alice
    )
    assert edited.status_code == 200 and "Tuesday" in edited.json()["content"]
    pinned = await client.post(f"/api/v1/statuses/{status['id']}/pin", headers=org)
    assert pinned.json()["pinned"] is True
