"""Notifications v1 (one, dismiss, clear, unread_count against the marker), v2 grouped, the
policy and requests Mastodon 4.3's apps call, and markers."""

from __future__ import annotations

from typing import Any

from tests.api.api_helpers import another_token, person, post
from tests.lab import Instance


async def _likes_and_boosts(
    instance: Instance,
) -> tuple[dict[str, str], dict[str, Any], list[dict[str, str]]]:
    """Alice posts; bob, carol and dave like and boost it; bob mentions her once."""
    client = instance.client
    _, alice = await person(instance, "alice")
    status = await post(client, alice, "Notice me")
    others = []
    for name in ("bob", "carol", "dave"):
        _, auth = await person(instance, name)
        others.append(auth)
        assert (
            await client.post(f"/api/v1/statuses/{status['id']}/favourite", headers=auth)
        ).status_code == 200
        assert (await client.post(f"/api/v1/statuses/{status['id']}/reblog", headers=auth)).status_code == 200
    await post(client, others[0], "@alice hello")
    return alice, status, others


async def test_grouped_notifications_as_mastodon_4_3(instance: Instance) -> None:
    client = instance.client
    alice, status, _ = await _likes_and_boosts(instance)
    answer = await client.get("/api/v2/notifications", headers=alice)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) >= {"accounts", "statuses", "notification_groups"}
    groups = body["notification_groups"]
    assert [group["type"] for group in groups] == ["mention", "reblog", "favourite"]
    likes = groups[2]
    assert likes["notifications_count"] == 3 and likes["status_id"] == status["id"]
    assert likes["group_key"].startswith(f"favourite-{status['id']}-")
    assert len(likes["sample_account_ids"]) == 3
    assert groups[0]["group_key"].startswith("ungrouped-") and groups[0]["notifications_count"] == 1
    for field in ("most_recent_notification_id", "page_min_id", "page_max_id", "latest_page_notification_at"):
        assert field in likes
    assert {account["acct"] for account in body["accounts"]} == {"bob", "carol", "dave"}
    # Each status once, however many groups name it.
    assert status["id"] in [item["id"] for item in body["statuses"]]
    assert len({item["id"] for item in body["statuses"]}) == len(body["statuses"])

    # Ungrouped on request; types[] and a page of one group with a Link that goes on.
    flat = (
        await client.get("/api/v2/notifications", params={"grouped_types[]": "reblog"}, headers=alice)
    ).json()
    assert [group["type"] for group in flat["notification_groups"]].count("favourite") == 3
    paged = await client.get(
        "/api/v2/notifications", params={"limit": 1, "types[]": "favourite"}, headers=alice
    )
    assert [group["type"] for group in paged.json()["notification_groups"]] == ["favourite"]
    assert "types%5B%5D=favourite" in paged.headers["link"] or "types[]=favourite" in paged.headers["link"]
    older = await client.get(paged.headers["link"].split(">")[0].lstrip("<"), headers=alice)
    assert older.json()["notification_groups"] == []

    key = likes["group_key"]
    one = (await client.get(f"/api/v2/notifications/{key}", headers=alice)).json()
    assert one["notification_groups"][0]["notifications_count"] == 3
    accounts = (await client.get(f"/api/v2/notifications/{key}/accounts", headers=alice)).json()
    assert sorted(account["acct"] for account in accounts) == ["bob", "carol", "dave"]
    assert (await client.get("/api/v2/notifications/favourite-x-y", headers=alice)).status_code == 404
    assert (await client.get("/api/v2/notifications/nonsense", headers=alice)).status_code == 404
    assert (await client.post(f"/api/v2/notifications/{key}/dismiss", headers=alice)).json() == {}
    assert (await client.get(f"/api/v2/notifications/{key}", headers=alice)).status_code == 404

    assert (await client.get("/api/v2/notifications/unread_count", headers=alice)).json() == {"count": 2}
    assert (await client.get("/api/v2/notifications")).status_code == 401
    assert (
        await client.get("/api/v2/notifications", params={"grouped_types[]": "bogus"}, headers=alice)
    ).status_code == 422


async def test_v1_one_dismiss_clear_and_unread_count_with_markers(instance: Instance) -> None:
    client = instance.client
    alice, _, others = await _likes_and_boosts(instance)
    notes = (await client.get("/api/v1/notifications", headers=alice)).json()
    assert len(notes) == 7
    assert (await client.get("/api/v1/notifications/unread_count", headers=alice)).json() == {"count": 7}
    newest = notes[0]
    one = await client.get(f"/api/v1/notifications/{newest['id']}", headers=alice)
    assert one.status_code == 200 and one.json()["type"] == "mention" and one.json()["status"]
    # Someone else's notification is not found, for reading or dismissing.
    bob = others[0]
    assert (await client.get(f"/api/v1/notifications/{newest['id']}", headers=bob)).status_code == 404
    assert (
        await client.post(f"/api/v1/notifications/{newest['id']}/dismiss", headers=bob)
    ).status_code == 404

    saved = await client.post(
        "/api/v1/markers", data={"notifications[last_read_id]": notes[2]["id"]}, headers=alice
    )
    assert saved.status_code == 200, saved.text
    marker = saved.json()["notifications"]
    assert marker["last_read_id"] == notes[2]["id"] and marker["version"] == 1 and marker["updated_at"]
    again = await client.post(
        "/api/v1/markers", json={"notifications": {"last_read_id": notes[1]["id"]}}, headers=alice
    )
    assert again.json()["notifications"]["version"] == 2
    assert (await client.get("/api/v1/notifications/unread_count", headers=alice)).json() == {"count": 1}
    markers = (
        await client.get("/api/v1/markers", params={"timeline[]": ["home", "notifications"]}, headers=alice)
    ).json()
    assert list(markers) == ["notifications"]
    await client.post("/api/v1/markers", data={"home[last_read_id]": "5"}, headers=alice)
    both = (await client.get("/api/v1/markers", headers=alice)).json()
    assert both["home"]["last_read_id"] == "5" and both["notifications"]["last_read_id"] == notes[1]["id"]
    bad = await client.post("/api/v1/markers", data={"home[last_read_id]": "abc"}, headers=alice)
    assert bad.status_code == 422 and "home" in bad.json()["error"]
    assert (await client.post("/api/v1/markers", json={}, headers=alice)).status_code == 422
    assert (await client.get("/api/v1/markers", headers=bob)).json() == {}

    dismissed = await client.post(f"/api/v1/notifications/{newest['id']}/dismiss", headers=alice)
    assert dismissed.status_code == 200 and dismissed.json() == {}
    assert (await client.get(f"/api/v1/notifications/{newest['id']}", headers=alice)).status_code == 404
    assert (await client.get("/api/v1/notifications/abc", headers=alice)).status_code == 404
    assert (await client.post("/api/v1/notifications/clear", headers=alice)).json() == {}
    assert (await client.get("/api/v1/notifications", headers=alice)).json() == []


async def test_scopes_and_policy(instance: Instance) -> None:
    client = instance.client
    alice_account, alice = await person(instance, "alice")
    read_only = await another_token(instance, alice_account, scopes="read")
    assert (await client.post("/api/v1/notifications/clear", headers=read_only)).status_code == 403
    assert (
        await client.post("/api/v1/markers", data={"home[last_read_id]": "1"}, headers=read_only)
    ).status_code == 403
    statuses_only = await another_token(instance, alice_account, scopes="read:statuses")
    assert (await client.get("/api/v1/notifications", headers=statuses_only)).status_code == 403

    policy = (await client.get("/api/v2/notifications/policy", headers=alice)).json()
    assert policy["for_not_following"] == "accept" and policy["summary"]["pending_requests_count"] == 0
    kept = await client.patch(
        "/api/v2/notifications/policy", json={"for_not_following": "accept"}, headers=alice
    )
    assert kept.status_code == 200
    refused = await client.patch(
        "/api/v2/notifications/policy", json={"for_new_accounts": "filter"}, headers=alice
    )
    assert refused.status_code == 422 and "for_new_accounts" in refused.json()["error"]
    assert (await client.get("/api/v1/notifications/policy", headers=alice)).json()[
        "filter_not_following"
    ] is False
    assert (await client.get("/api/v1/notifications/requests", headers=alice)).json() == []
    assert (await client.get("/api/v1/notifications/requests/123", headers=alice)).status_code == 404
    too_many = await client.get("/api/v1/notifications", params=[("types[]", "mention")] * 16, headers=alice)
    assert too_many.status_code == 422
