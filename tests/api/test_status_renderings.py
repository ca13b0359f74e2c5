"""Statuses rendered once and kept (app.services.renderings): each reader still gets their own
flags, the latest edit and profile, and only what the visibility rule lets them see."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update

from app.models import Post
from app.models.base import utcnow
from tests.api.api_helpers import person, post
from tests.lab import Instance


async def home(client: httpx.AsyncClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/timelines/home", headers=auth)
    assert answer.status_code == 200, answer.text
    body: list[dict[str, Any]] = answer.json()
    return body


async def test_each_reader_gets_their_own_flags_the_latest_edit_and_the_latest_profile(
    instance: Instance,
) -> None:
    client = instance.client
    alice, alice_auth = await person(instance, "alice")
    _bob, bob_auth = await person(instance, "bob")
    assert (await client.post(f"/api/v1/accounts/{alice.id}/follow", headers=bob_auth)).status_code == 200
    status = await post(client, alice_auth, "first version")

    # Both readers' pages are made from the one kept rendering.
    assert [entry["content"] for entry in await home(client, alice_auth)] == ["<p>first version</p>"]
    assert [entry["id"] for entry in await home(client, bob_auth)] == [status["id"]]
    assert len(instance.context.renderings.posts) == 1

    liked = await client.post(f"/api/v1/statuses/{status['id']}/favourite", headers=bob_auth)
    assert liked.status_code == 200
    bobs, alices = (await home(client, bob_auth))[0], (await home(client, alice_auth))[0]
    assert bobs["favourited"] is True and alices["favourited"] is False
    assert bobs["favourites_count"] == alices["favourites_count"] == 1
    # Only the author (who may pin it) is told whether it is pinned.
    assert alices["pinned"] is False and "pinned" not in bobs

    edited = await client.put(
        f"/api/v1/statuses/{status['id']}", json={"status": "second"}, headers=alice_auth
    )
    assert edited.status_code == 200
    for auth in (alice_auth, bob_auth):
        shown = (await home(client, auth))[0]
        assert shown["content"] == "<p>second</p>" and shown["edited_at"] is not None

    renamed = await client.patch(
        "/api/v1/accounts/update_credentials", data={"display_name": "Alice Renamed"}, headers=alice_auth
    )
    assert renamed.status_code == 200
    assert (await home(client, bob_auth))[0]["account"]["display_name"] == "Alice Renamed"


async def test_an_edit_no_event_announced_here_is_shown_by_its_version(instance: Instance) -> None:
    # Another process's edit whose event has not arrived yet: the page's row carries the new
    # `edited_at`, and a rendering of another version is never used.
    client = instance.client
    _alice, auth = await person(instance, "alice")
    status = await post(client, auth, "as first written")
    assert (await home(client, auth))[0]["content"] == "<p>as first written</p>"
    async with instance.context.sessions() as session:
        await session.execute(
            update(Post)
            .where(Post.id == int(status["id"]))  # type: ignore[arg-type]
            .values(content_html="<p>edited elsewhere</p>", edited_at=utcnow())
        )
        await session.commit()
    assert (await home(client, auth))[0]["content"] == "<p>edited elsewhere</p>"


async def test_a_kept_status_reaches_only_those_the_visibility_rule_lets_see_it(instance: Instance) -> None:
    client = instance.client
    alice, alice_auth = await person(instance, "alice")
    _bob, bob_auth = await person(instance, "bob")
    _carol, carol_auth = await person(instance, "carol")
    assert (await client.post(f"/api/v1/accounts/{alice.id}/follow", headers=bob_auth)).status_code == 200
    private = await post(client, alice_auth, "for followers", visibility="private")
    # Rendered and kept for a follower...
    assert [entry["id"] for entry in await home(client, bob_auth)] == [private["id"]]
    # ...and still not shown to anyone else, by any list or by its id.
    assert await home(client, carol_auth) == []
    assert (await client.get(f"/api/v1/statuses/{private['id']}", headers=carol_auth)).status_code == 404
    listed = await client.get(f"/api/v1/accounts/{alice.id}/statuses", headers=carol_auth)
    assert listed.json() == []
    assert (await client.get("/api/v1/timelines/public")).json() == []
    # Once bob stops following, his home no longer shows it either.
    assert (await client.post(f"/api/v1/accounts/{alice.id}/unfollow", headers=bob_auth)).status_code == 200
    assert await home(client, bob_auth) == []
