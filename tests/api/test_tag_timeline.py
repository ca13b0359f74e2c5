"""The hashtag timeline (any/all/none, local, only_media) and the public timeline's only_media."""

from __future__ import annotations

from app.models import MediaAttachment
from tests.api.api_helpers import person, post
from tests.lab import Instance


async def test_tag_timeline_any_all_none_and_only_media(instance: Instance) -> None:
    client = instance.client
    alice_account, alice = await person(instance, "alice")
    cats = await post(client, alice, "#cats are great")
    both = await post(client, alice, "#cats and #dogs")
    dogs = await post(client, alice, "#Dogs only")
    await post(client, alice, "#cats in secret", visibility="private")
    await post(client, alice, "#cats unlisted", visibility="unlisted")

    def ids(answer: list[dict[str, object]]) -> list[object]:
        return [item["id"] for item in answer]

    assert ids((await client.get("/api/v1/timelines/tag/cats")).json()) == [both["id"], cats["id"]]
    assert ids((await client.get("/api/v1/timelines/tag/CATS")).json()) == [both["id"], cats["id"]]
    any_of = await client.get("/api/v1/timelines/tag/cats", params={"any[]": "dogs"})
    assert ids(any_of.json()) == [dogs["id"], both["id"], cats["id"]]
    all_of = await client.get("/api/v1/timelines/tag/cats", params={"all[]": "dogs"})
    assert ids(all_of.json()) == [both["id"]]
    none_of = await client.get("/api/v1/timelines/tag/cats", params={"none[]": "dogs"})
    assert ids(none_of.json()) == [cats["id"]]
    assert (await client.get("/api/v1/timelines/tag/cats", params={"remote": "true"})).json() == []
    paged = await client.get("/api/v1/timelines/tag/cats", params={"limit": 1, "local": "true"})
    assert ids(paged.json()) == [both["id"]] and "local=true" in paged.headers["link"]
    too_many = await client.get("/api/v1/timelines/tag/cats", params=[("any[]", str(n)) for n in range(5)])
    assert too_many.status_code == 422 and "any" in too_many.json()["error"]

    async with instance.context.sessions() as session:
        session.add(
            MediaAttachment(
                post_id=int(cats["id"]), account_id=alice_account.id, media_type="image/png", url="/m.png"
            )
        )
        await session.commit()
    with_media = await client.get("/api/v1/timelines/tag/cats", params={"only_media": "true"})
    assert ids(with_media.json()) == [cats["id"]]
    public_media = await client.get("/api/v1/timelines/public", params={"only_media": "true"}, headers=alice)
    assert ids(public_media.json()) == [cats["id"]]
