"""Admins write announcements in Admin → Announcements; apps show the active ones, mark them read
and react with Unicode emoji."""

from __future__ import annotations

from app.models import Role
from tests.api.api_helpers import person
from tests.lab import Instance
from tests.web.helpers import logged_in


async def test_admin_page_publishes_and_apps_show_dismiss_and_react(instance: Instance) -> None:
    client = instance.client
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    _, alice = await person(instance, "alice")
    page = await admin.get("/admin/announcements")
    assert page.status_code == 200 and 'name="starts_at"' in page.text
    published = await admin.post("/admin/announcements", {"text": "Maintenance on #Friday"})
    assert published.status_code == 303
    await admin.post("/admin/announcements", {"text": "Later", "starts_at": "2999-01-01T10:00"})
    await admin.post("/admin/announcements", {"text": "Over", "ends_at": "2001-01-01T10:00"})
    refused = await admin.post(
        "/admin/announcements", {"text": "x", "starts_at": "2030-01-02T10:00", "ends_at": "2030-01-01T10:00"}
    )
    assert refused.status_code == 400 and "end must come after" in refused.text
    assert (await admin.post("/admin/announcements", {"text": "x", "starts_at": "soon"})).status_code == 400
    assert "Maintenance on #Friday" in (await admin.get("/admin/announcements")).text

    shown = (await client.get("/api/v1/announcements", headers=alice)).json()
    assert len(shown) == 1
    item = shown[0]
    assert "Maintenance on" in item["content"] and item["read"] is False and item["reactions"] == []
    for field in (
        "starts_at",
        "ends_at",
        "all_day",
        "published_at",
        "updated_at",
        "mentions",
        "tags",
        "emojis",
    ):
        assert field in item
    assert (await client.post(f"/api/v1/announcements/{item['id']}/dismiss", headers=alice)).json() == {}
    assert (
        await client.put(f"/api/v1/announcements/{item['id']}/reactions/👍", headers=alice)
    ).status_code == 200
    assert (
        await client.put(f"/api/v1/announcements/{item['id']}/reactions/👍🏽", headers=alice)
    ).status_code == 200
    unknown = await client.put(f"/api/v1/announcements/{item['id']}/reactions/blobcat", headers=alice)
    assert unknown.status_code == 404 and unknown.json()["error"]
    again = (await client.get("/api/v1/announcements", headers=alice)).json()[0]
    assert again["read"] is True
    assert again["reactions"] == [
        {"name": "👍", "count": 1, "me": True},
        {"name": "👍🏽", "count": 1, "me": True},
    ]
    _, bob = await person(instance, "bob")
    seen_by_bob = (await client.get("/api/v1/announcements", headers=bob)).json()[0]
    assert seen_by_bob["read"] is False and seen_by_bob["reactions"][0] == {
        "name": "👍",
        "count": 1,
        "me": False,
    }
    await client.delete(f"/api/v1/announcements/{item['id']}/reactions/👍", headers=alice)
    assert len((await client.get("/api/v1/announcements", headers=alice)).json()[0]["reactions"]) == 1
    assert (await client.post("/api/v1/announcements/999/dismiss", headers=alice)).status_code == 404
    assert (await client.get("/api/v1/announcements")).status_code == 401

    # Only admins reach the page; withdrawing removes it from the apps.
    staff = await logged_in(instance, "carol")
    assert (await staff.get("/admin/announcements")).status_code == 403
    withdrawn = await admin.post(f"/admin/announcements/{item['id']}/delete")
    assert withdrawn.status_code == 303
    assert (await client.get("/api/v1/announcements", headers=alice)).json() == []
    await admin.aclose()
    await staff.aclose()
