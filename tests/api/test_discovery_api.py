"""Search, lists, filters, followed and featured tags through the client API, with the shapes
Mastodon sends, scopes, and others' resources not found."""

from __future__ import annotations

from typing import Any

import httpx

from app.models import Account
from app.services.following import FollowingService
from app.services.oauth import OAuthService
from app.services.viewer import Viewer
from tests.lab import Instance
from tests.web.helpers import make_user


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def person(instance: Instance, username: str, scopes: str = "read write follow") -> tuple[Account, str]:
    user, account = await make_user(instance, username)
    token = await OAuthService(instance.context).issue_personal_token(
        user, scopes=scopes, app_name="tests", acting_as=account
    )
    return account, token


async def follow(instance: Instance, follower: Account, target: str) -> None:
    await FollowingService(instance.context, Viewer.system()).follow(follower, f"@{target}@a.test")


async def post(client: httpx.AsyncClient, token: str, text: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/statuses", json={"status": text, **extra}, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def get_json(client: httpx.AsyncClient, path: str, token: str | None = None, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=bearer(token) if token else {})
    assert response.status_code == 200, response.text
    return response.json()


async def test_search_finds_accounts_posts_and_hashtags_the_viewer_may_see(instance: Instance) -> None:
    client = instance.client
    alice, alice_token = await person(instance, "alice")
    _, bob_token = await person(instance, "bob")
    _, carol_token = await person(instance, "carol")
    public = await post(client, bob_token, "Budget meeting on #townhall tonight")
    private = await post(client, bob_token, "Budget secrets for followers", visibility="private")

    found = await get_json(client, "/api/v2/search", alice_token, q="bob")
    assert [account["acct"] for account in found["accounts"]] == ["bob"]
    assert set(found) == {"accounts", "statuses", "hashtags"}

    found = await get_json(client, "/api/v2/search", alice_token, q="budget", type="statuses")
    # Alice does not follow bob: his followers-only post stays hidden.
    assert [status["id"] for status in found["statuses"]] == [public["id"]]
    assert found["accounts"] == [] and found["hashtags"] == []

    tags = (await get_json(client, "/api/v2/search", alice_token, q="#town"))["hashtags"]
    assert tags[0]["name"] == "townhall" and tags[0]["following"] is False
    assert tags[0]["url"] == "http://a.test/tags/townhall" and tags[0]["history"] == []

    by_url = await get_json(client, "/api/v2/search", alice_token, q=public["uri"], resolve="true")
    assert [status["id"] for status in by_url["statuses"]] == [public["id"]]
    hidden = await get_json(client, "/api/v2/search", carol_token, q=private["uri"])
    assert hidden["statuses"] == []

    handle = await get_json(client, "/api/v2/search", alice_token, q="@bob@a.test", type="accounts")
    assert handle["accounts"][0]["acct"] == "bob"

    await follow(instance, alice, "bob")
    following = await get_json(client, "/api/v1/accounts/search", alice_token, q="o", following="true")
    assert [account["acct"] for account in following] == ["bob"]
    everyone = await get_json(client, "/api/v1/accounts/search", alice_token, q="o")
    assert {account["acct"] for account in everyone} >= {"bob", "carol"}

    # Resolving and paging are for people signed in; bad parameters name the field.
    assert (await client.get("/api/v2/search", params={"q": "bob", "resolve": "true"})).status_code == 401
    anonymous = await get_json(client, "/api/v2/search", q="budget")
    assert anonymous["statuses"] == [] and anonymous["accounts"] == []
    wrong = await client.get(
        "/api/v2/search", params={"q": "x", "type": "people"}, headers=bearer(alice_token)
    )
    assert wrong.status_code == 422 and "type" in wrong.json()["error"]
    wrong = await client.get(
        "/api/v2/search", params={"q": "x", "limit": "many"}, headers=bearer(alice_token)
    )
    assert wrong.status_code == 422 and "limit" in wrong.json()["error"]
    assert (await client.get("/api/v2/search", headers=bearer(alice_token))).status_code == 400


async def test_search_resolve_fails_softly_on_an_unreachable_handle(instance: Instance) -> None:
    _, token = await person(instance, "alice")
    found = await get_json(
        instance.client, "/api/v2/search", token, q="@someone@unreachable.invalid", resolve="true"
    )
    assert found["accounts"] == []


async def test_lists_members_timeline_and_exclusive_lists(instance: Instance) -> None:
    client = instance.client
    alice, alice_token = await person(instance, "alice")
    bob, bob_token = await person(instance, "bob")
    carol, carol_token = await person(instance, "carol")
    _, mallory_token = await person(instance, "mallory")
    await follow(instance, alice, "bob")
    await follow(instance, alice, "carol")

    created = await client.post("/api/v1/lists", json={"title": "Council"}, headers=bearer(alice_token))
    assert created.status_code == 200, created.text
    council = created.json()
    assert council == {"id": council["id"], "title": "Council", "replies_policy": "list", "exclusive": False}
    added = await client.post(
        f"/api/v1/lists/{council['id']}/accounts",
        data={"account_ids[]": [str(bob.id)]},
        headers=bearer(alice_token),
    )
    assert added.status_code == 200 and added.json() == {}
    members = await get_json(client, f"/api/v1/lists/{council['id']}/accounts", alice_token)
    assert [member["acct"] for member in members] == ["bob"]
    assert [
        item["id"] for item in await get_json(client, f"/api/v1/accounts/{bob.id}/lists", alice_token)
    ] == [council["id"]]

    from_bob = await post(client, bob_token, "Agenda is out")
    from_carol = await post(client, carol_token, "Lunch?")
    timeline = await get_json(client, f"/api/v1/timelines/list/{council['id']}", alice_token)
    assert [status["id"] for status in timeline] == [from_bob["id"]]
    home = [status["id"] for status in await get_json(client, "/api/v1/timelines/home", alice_token)]
    assert from_bob["id"] in home and from_carol["id"] in home

    # An exclusive list takes its members' posts off the home timeline.
    updated = await client.put(
        f"/api/v1/lists/{council['id']}",
        json={"exclusive": True, "title": "Council"},
        headers=bearer(alice_token),
    )
    assert updated.json()["exclusive"] is True
    home = [status["id"] for status in await get_json(client, "/api/v1/timelines/home", alice_token)]
    assert from_bob["id"] not in home and from_carol["id"] in home

    # Only followed accounts join; another's list is not found; bad input names the field.
    refused = await client.post(
        f"/api/v1/lists/{council['id']}/accounts",
        json={"account_ids": [str(carol.id + 0)]},
        headers=bearer(bob_token),
    )
    assert refused.status_code == 404
    not_followed = await post(client, mallory_token, "hi")
    mallory_id = not_followed["account"]["id"]
    refused = await client.post(
        f"/api/v1/lists/{council['id']}/accounts",
        json={"account_ids": [mallory_id]},
        headers=bearer(alice_token),
    )
    assert refused.status_code == 422 and "account_ids" in refused.json()["error"]
    for path in (
        f"/api/v1/lists/{council['id']}",
        f"/api/v1/timelines/list/{council['id']}",
        "/api/v1/lists/abc",
    ):
        assert (await client.get(path, headers=bearer(bob_token))).status_code == 404
    blank = await client.post("/api/v1/lists", json={"title": " "}, headers=bearer(alice_token))
    assert blank.status_code == 422 and "title" in blank.json()["error"]
    policy = await client.post(
        "/api/v1/lists", json={"title": "x", "replies_policy": "all"}, headers=bearer(alice_token)
    )
    assert policy.status_code == 422 and "replies_policy" in policy.json()["error"]
    assert (await client.get("/api/v1/lists")).status_code == 401
    _, read_only = await person(instance, "reader", scopes="read")
    assert (
        await client.post("/api/v1/lists", json={"title": "x"}, headers=bearer(read_only))
    ).status_code == 403

    removed = await client.request(
        "DELETE",
        f"/api/v1/lists/{council['id']}/accounts",
        data={"account_ids[]": [str(bob.id)]},
        headers=bearer(alice_token),
    )
    assert removed.status_code == 200
    assert await get_json(client, f"/api/v1/lists/{council['id']}/accounts", alice_token) == []
    assert (
        await client.delete(f"/api/v1/lists/{council['id']}", headers=bearer(alice_token))
    ).status_code == 200
    assert await get_json(client, "/api/v1/lists", alice_token) == []


async def test_filters_hide_and_warn_on_the_server(instance: Instance) -> None:
    client = instance.client
    alice, alice_token = await person(instance, "alice")
    _, bob_token = await person(instance, "bob")
    _, other_token = await person(instance, "other")
    await follow(instance, alice, "bob")
    spoiler = await post(client, bob_token, "The match ended 2:1")
    categorised = await post(client, bob_token, "A new category of parks")
    cats = await post(client, bob_token, "Cat pictures from the shelter")
    plain = await post(client, bob_token, "Road works on Main Street")

    hide = await client.post(
        "/api/v2/filters",
        json={
            "title": "Sport",
            "context": ["home", "public"],
            "filter_action": "hide",
            "keywords_attributes": [{"keyword": "match", "whole_word": True}],
        },
        headers=bearer(alice_token),
    )
    assert hide.status_code == 200, hide.text
    hidden_filter = hide.json()
    assert hidden_filter["filter_action"] == "hide" and hidden_filter["context"] == ["home", "public"]
    assert hidden_filter["keywords"][0]["keyword"] == "match" and hidden_filter["statuses"] == []
    # Form-encoded, as Rails reads nested attributes.
    warn = await client.post(
        "/api/v2/filters",
        data={
            "title": "Cats",
            "context[]": ["home"],
            "filter_action": "warn",
            "keywords_attributes[][keyword]": "cat",
            "keywords_attributes[][whole_word]": "true",
        },
        headers=bearer(alice_token),
    )
    assert warn.status_code == 200, warn.text
    warn_filter = warn.json()

    home = {status["id"]: status for status in await get_json(client, "/api/v1/timelines/home", alice_token)}
    assert spoiler["id"] not in home
    assert home[categorised["id"]]["filtered"] == []
    assert home[plain["id"]]["filtered"] == []
    result = home[cats["id"]]["filtered"]
    assert result[0]["filter"]["id"] == warn_filter["id"] and result[0]["filter"]["filter_action"] == "warn"
    assert result[0]["keyword_matches"] == ["cat"] and result[0]["status_matches"] is None
    public = [status["id"] for status in await get_json(client, "/api/v1/timelines/public", alice_token)]
    assert spoiler["id"] not in public and cats["id"] in public
    # The author's own timelines and other people are not filtered.
    assert spoiler["id"] in [s["id"] for s in await get_json(client, "/api/v1/timelines/public", bob_token)]

    # A single post in a filter.
    added = await client.post(
        f"/api/v2/filters/{warn_filter['id']}/statuses",
        json={"status_id": plain["id"]},
        headers=bearer(alice_token),
    )
    assert added.status_code == 200 and added.json()["status_id"] == plain["id"]
    home = {status["id"]: status for status in await get_json(client, "/api/v1/timelines/home", alice_token)}
    assert home[plain["id"]]["filtered"][0]["status_matches"] == [plain["id"]]

    # v1 shows each keyword as a filter; it can create and delete them too.
    v1 = await get_json(client, "/api/v1/filters", alice_token)
    assert {item["phrase"] for item in v1} == {"match", "cat"}
    assert next(item for item in v1 if item["phrase"] == "match")["irreversible"] is True
    made = await client.post(
        "/api/v1/filters",
        data={"phrase": "road", "context[]": ["home"], "irreversible": "true"},
        headers=bearer(alice_token),
    )
    assert made.status_code == 200 and made.json()["whole_word"] is True
    home = [status["id"] for status in await get_json(client, "/api/v1/timelines/home", alice_token)]
    assert plain["id"] not in home
    assert (
        await client.delete(f"/api/v1/filters/{made.json()['id']}", headers=bearer(alice_token))
    ).status_code == 200
    assert len(await get_json(client, "/api/v2/filters", alice_token)) == 2

    # Update: rename, add and remove keywords in one request.
    keyword_id = hidden_filter["keywords"][0]["id"]
    updated = await client.put(
        f"/api/v2/filters/{hidden_filter['id']}",
        json={
            "title": "Sports",
            "keywords_attributes": [
                {"id": keyword_id, "_destroy": True},
                {"keyword": "goal", "whole_word": False},
            ],
        },
        headers=bearer(alice_token),
    )
    assert updated.status_code == 200, updated.text
    assert [k["keyword"] for k in updated.json()["keywords"]] == ["goal"] and updated.json()[
        "title"
    ] == "Sports"
    home = [status["id"] for status in await get_json(client, "/api/v1/timelines/home", alice_token)]
    assert spoiler["id"] in home

    # Others' filters are not found; bad input names the field; scopes hold.
    assert (
        await client.get(f"/api/v2/filters/{hidden_filter['id']}", headers=bearer(other_token))
    ).status_code == 404
    assert (
        await client.delete(
            f"/api/v2/filters/keywords/{warn_filter['keywords'][0]['id']}", headers=bearer(other_token)
        )
    ).status_code == 404
    for body, field in (
        ({"title": "x", "context": ["everywhere"]}, "context"),
        ({"title": "x", "context": []}, "context"),
        ({"title": "", "context": ["home"]}, "title"),
        ({"title": "x", "context": ["home"], "filter_action": "delete"}, "filter_action"),
        ({"title": "x", "context": ["home"], "expires_in": "soon"}, "expires_in"),
    ):
        answer = await client.post("/api/v2/filters", json=body, headers=bearer(alice_token))
        assert answer.status_code == 422 and field in answer.json()["error"], (body, answer.text)
    _, read_only = await person(instance, "reader", scopes="read")
    answer = await client.post(
        "/api/v2/filters", json={"title": "x", "context": ["home"]}, headers=bearer(read_only)
    )
    assert answer.status_code == 403
    assert (await client.get("/api/v2/filters")).status_code == 401

    assert (
        await client.delete(f"/api/v2/filters/{warn_filter['id']}", headers=bearer(alice_token))
    ).status_code == 200
    home = {status["id"]: status for status in await get_json(client, "/api/v1/timelines/home", alice_token)}
    assert home[cats["id"]]["filtered"] == []


async def test_followed_tags_reach_home_and_featured_tags(instance: Instance) -> None:
    client = instance.client
    alice, alice_token = await person(instance, "alice")
    _, bob_token = await person(instance, "bob")

    followed = await client.post("/api/v1/tags/Parks/follow", headers=bearer(alice_token))
    assert followed.status_code == 200, followed.text
    assert followed.json()["name"] == "parks" and followed.json()["following"] is True
    tagged = await post(client, bob_token, "New benches in the #parks")
    untagged = await post(client, bob_token, "Nothing to see")
    unlisted = await post(client, bob_token, "Quiet #parks news", visibility="unlisted")
    home = [status["id"] for status in await get_json(client, "/api/v1/timelines/home", alice_token)]
    assert tagged["id"] in home and untagged["id"] not in home and unlisted["id"] not in home

    tags = await get_json(client, "/api/v1/followed_tags", alice_token)
    assert [tag["name"] for tag in tags] == ["parks"]
    shown = await get_json(client, "/api/v1/tags/parks", alice_token)
    assert shown["following"] is True
    assert (await client.get("/api/v1/tags/nosuchtag", headers=bearer(alice_token))).status_code == 404
    assert (await client.post("/api/v1/tags/parks/unfollow", headers=bearer(alice_token))).json()[
        "following"
    ] is False
    assert await get_json(client, "/api/v1/followed_tags", alice_token) == []
    bad = await client.post("/api/v1/tags/not a tag/follow", headers=bearer(alice_token))
    assert bad.status_code == 422

    await post(client, alice_token, "Spring in the #parks and #gardens")
    suggestions = await get_json(client, "/api/v1/featured_tags/suggestions", alice_token)
    assert {tag["name"] for tag in suggestions} == {"parks", "gardens"}
    featured = await client.post(
        "/api/v1/featured_tags", json={"name": "#parks"}, headers=bearer(alice_token)
    )
    assert featured.status_code == 200, featured.text
    entity = featured.json()
    assert entity["name"] == "parks" and entity["statuses_count"] == "1" and entity["last_status_at"]
    again = await client.post("/api/v1/featured_tags", json={"name": "parks"}, headers=bearer(alice_token))
    assert again.status_code == 422
    shown = await get_json(client, f"/api/v1/accounts/{alice.id}/featured_tags")
    assert [tag["name"] for tag in shown] == ["parks"]
    assert (
        await client.delete(f"/api/v1/featured_tags/{entity['id']}", headers=bearer(bob_token))
    ).status_code == 404
    assert (
        await client.delete(f"/api/v1/featured_tags/{entity['id']}", headers=bearer(alice_token))
    ).status_code == 200
    assert await get_json(client, "/api/v1/featured_tags", alice_token) == []


async def test_conversations_list_read_and_remove_direct_messages(instance: Instance) -> None:
    client = instance.client
    alice, alice_token = await person(instance, "alice")
    _, bob_token = await person(instance, "bob")
    _, carol_token = await person(instance, "carol")
    first = await post(client, bob_token, "@alice are you coming tonight?", visibility="direct")
    await post(client, bob_token, "Public hello")

    found = await get_json(client, "/api/v1/conversations", alice_token)
    assert len(found) == 1
    conversation = found[0]
    assert conversation["id"] == first["id"] and conversation["unread"] is True
    assert [account["acct"] for account in conversation["accounts"]] == ["bob"]
    assert conversation["last_status"]["id"] == first["id"]
    # The author sees it too, read (its last post is their own).
    mine = await get_json(client, "/api/v1/conversations", bob_token)
    assert mine[0]["unread"] is False and [a["acct"] for a in mine[0]["accounts"]] == ["alice"]
    # Someone not in it neither sees nor touches it.
    assert await get_json(client, "/api/v1/conversations", carol_token) == []
    for method, path in (
        ("POST", f"/api/v1/conversations/{first['id']}/read"),
        ("DELETE", f"/api/v1/conversations/{first['id']}"),
    ):
        answer = await client.request(method, path, headers=bearer(carol_token))
        assert answer.status_code == 404

    reply = await post(client, alice_token, "@bob yes!", visibility="direct", in_reply_to_id=first["id"])
    found = await get_json(client, "/api/v1/conversations", alice_token)
    assert found[0]["id"] == first["id"] and found[0]["last_status"]["id"] == reply["id"]
    assert found[0]["unread"] is False
    answer = await post(client, bob_token, "@alice great", visibility="direct", in_reply_to_id=reply["id"])
    found = await get_json(client, "/api/v1/conversations", alice_token)
    assert found[0]["unread"] is True and found[0]["last_status"]["id"] == answer["id"]
    read = await client.post(f"/api/v1/conversations/{first['id']}/read", headers=bearer(alice_token))
    assert read.status_code == 200 and read.json()["unread"] is False
    assert (await get_json(client, "/api/v1/conversations", alice_token))[0]["unread"] is False

    removed = await client.delete(f"/api/v1/conversations/{first['id']}", headers=bearer(alice_token))
    assert removed.status_code == 200
    assert await get_json(client, "/api/v1/conversations", alice_token) == []
    # A newer message brings it back, unread.
    await post(client, bob_token, "@alice one more thing", visibility="direct", in_reply_to_id=answer["id"])
    found = await get_json(client, "/api/v1/conversations", alice_token)
    assert [item["id"] for item in found] == [first["id"]] and found[0]["unread"] is True
    assert (await client.get("/api/v1/conversations")).status_code == 401
    del alice


async def test_trends_suggestions_and_instance_details(instance: Instance) -> None:
    client = instance.client
    _, alice_token = await person(instance, "alice")
    bob, bob_token = await person(instance, "bob")
    liked = await post(client, bob_token, "Market day #market")
    await post(client, alice_token, "Fresh bread at the #market")
    await post(client, alice_token, "Quiet #market morning", visibility="unlisted")
    assert (
        await client.post(f"/api/v1/statuses/{liked['id']}/favourite", headers=bearer(alice_token))
    ).status_code == 200

    tags = await get_json(client, "/api/v1/trends/tags")
    assert [tag["name"] for tag in tags] == ["market"]
    assert len(tags[0]["history"]) == 7 and tags[0]["history"][0]["uses"] == "2"
    assert tags[0]["history"][0]["accounts"] == "2"
    trending = await get_json(client, "/api/v1/trends/statuses")
    assert [status["id"] for status in trending] == [liked["id"]]
    assert await get_json(client, "/api/v1/trends/links") == []

    suggested = await get_json(client, "/api/v2/suggestions", alice_token)
    assert {item["account"]["acct"] for item in suggested} >= {"bob"}
    assert all(item["account"]["acct"] != "alice" for item in suggested)
    await follow(instance, (await person(instance, "carol"))[0], "bob")
    v1 = await get_json(client, "/api/v1/suggestions", alice_token)
    assert v1[0]["acct"] == "bob"
    assert (await client.delete(f"/api/v1/suggestions/{bob.id}", headers=bearer(alice_token))).json() == {}

    assert isinstance(await get_json(client, "/api/v1/instance/peers"), list)
    weeks = await get_json(client, "/api/v1/instance/activity")
    assert len(weeks) == 12 and int(weeks[0]["statuses"]) >= 3
    assert set(weeks[0]) == {"week", "statuses", "logins", "registrations"}
    for path in ("/api/v1/instance/extended_description", "/api/v1/instance/privacy_policy"):
        assert set(await get_json(client, path)) == {"updated_at", "content"}


async def test_filters_apply_to_notifications_threads_and_profiles_in_their_contexts(
    instance: Instance,
) -> None:
    client = instance.client
    _, alice_token = await person(instance, "alice")
    bob, bob_token = await person(instance, "bob")
    start = await post(client, alice_token, "Who wants to talk about the weather?")
    spoiler = await post(client, bob_token, "@alice the match result is in", in_reply_to_id=start["id"])
    fine = await post(client, bob_token, "@alice sunny all week", in_reply_to_id=start["id"])

    made = await client.post(
        "/api/v2/filters",
        json={
            "title": "Sport",
            "context": ["notifications", "thread"],
            "filter_action": "hide",
            "keywords_attributes": [{"keyword": "match"}],
        },
        headers=bearer(alice_token),
    )
    assert made.status_code == 200, made.text
    about = [
        note["status"]["id"]
        for note in await get_json(client, "/api/v1/notifications", alice_token)
        if "status" in note
    ]
    assert fine["id"] in about and spoiler["id"] not in about
    thread = await get_json(client, f"/api/v1/statuses/{start['id']}/context", alice_token)
    assert [status["id"] for status in thread["descendants"]] == [fine["id"]]
    # Not in the account context: the profile still lists it, until the filter names it.
    profile = [
        status["id"] for status in await get_json(client, f"/api/v1/accounts/{bob.id}/statuses", alice_token)
    ]
    assert spoiler["id"] in profile
    updated = await client.put(
        f"/api/v2/filters/{made.json()['id']}",
        json={"context": ["account"], "filter_action": "warn"},
        headers=bearer(alice_token),
    )
    assert updated.status_code == 200 and updated.json()["context"] == ["account"]
    profile = {
        status["id"]: status
        for status in await get_json(client, f"/api/v1/accounts/{bob.id}/statuses", alice_token)
    }
    assert profile[spoiler["id"]]["filtered"][0]["keyword_matches"] == ["match"]
    assert profile[fine["id"]]["filtered"] == []
