"""An app editing the token's profile (update_credentials, with pictures as multipart files),
reading an account's posts with Mastodon's filters, and reporting an account."""

from __future__ import annotations

import io

from PIL import Image
from sqlmodel import select

from app.models import Account, AuditLogEntry, Report
from app.services.instance import InstanceAbout, InstanceService
from app.services.posting import PostingService
from tests.api.account_helpers import api_user, ok
from tests.lab import Instance


def png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


async def test_update_credentials_as_a_form_with_pictures_and_as_json(instance: Instance) -> None:
    client = instance.client
    alice, auth = await api_user(instance, "alice")
    updated = await ok(
        await client.patch(
            "/api/v1/accounts/update_credentials",
            data={
                "display_name": "Alice Example",
                "note": "Press office. #news",
                "fields_attributes[0][name]": "Web",
                "fields_attributes[0][value]": "https://example.org",
                "fields_attributes[1][name]": "Phone",
                "fields_attributes[1][value]": "+49 30 1234",
                "bot": "true",
                "source[privacy]": "unlisted",
                "source[sensitive]": "true",
                "source[language]": "de",
            },
            files={"avatar": ("me.png", png((800, 600)), "image/png")},
            headers=auth,
        )
    )
    assert updated["display_name"] == "Alice Example"
    assert "#news" in updated["note"] or "news" in updated["note"]
    assert [field["name"] for field in updated["fields"]] == ["Web", "Phone"]
    assert updated["bot"] is True
    assert "/media/profiles/" in updated["avatar"]
    assert updated["source"]["privacy"] == "unlisted"
    assert updated["source"]["sensitive"] is True and updated["source"]["language"] == "de"
    assert updated["source"]["note"] == "Press office. #news"
    assert updated["source"]["fields"][0] == {
        "name": "Web",
        "value": "https://example.org",
        "verified_at": None,
    }

    # JSON, as Elk sends it; what is not named stays.
    again = await ok(
        await client.patch(
            "/api/v1/accounts/update_credentials",
            json={
                "locked": True,
                "source": {"privacy": "private"},
                "fields_attributes": [{"name": "Only", "value": "one"}],
            },
            headers=auth,
        )
    )
    assert again["locked"] is True and again["display_name"] == "Alice Example"
    assert again["source"]["privacy"] == "private" and [f["name"] for f in again["fields"]] == ["Only"]
    me = await ok(await client.get("/api/v1/accounts/verify_credentials", headers=auth))
    assert me["source"]["privacy"] == "private" and me["locked"] is True and me["bot"] is True
    async with instance.context.sessions() as session:
        stored = await session.get(Account, alice.id)
    assert stored is not None and stored.actor_type == "Service"
    # A post that names no audience or language takes the defaults, as on Mastodon.
    posted = await ok(await client.post("/api/v1/statuses", json={"status": "Defaults"}, headers=auth))
    assert posted["visibility"] == "private" and posted["language"] == "de"
    assert posted["sensitive"] is True  # source[sensitive] above
    chosen = await ok(
        await client.post(
            "/api/v1/statuses", json={"status": "Not this one", "sensitive": False}, headers=auth
        )
    )
    assert chosen["sensitive"] is False
    preferences = await ok(await client.get("/api/v1/preferences", headers=auth))
    assert preferences["posting:default:visibility"] == "private"
    assert (
        preferences["posting:default:sensitive"] is True and preferences["posting:default:language"] == "de"
    )


async def test_update_credentials_refuses_bad_input_naming_the_field(instance: Instance) -> None:
    client = instance.client
    _, auth = await api_user(instance, "alice")
    _, reader = await api_user(instance, "reader", scopes="read")
    cases = [
        ({"display_name": "x" * 200}, "display name"),
        ({"source": {"privacy": "everyone"}}, "privacy"),
        ({"source": {"language": "English!"}}, "language"),
        ({"locked": "perhaps"}, "locked"),
        ({"fields_attributes": [{"name": str(n), "value": "v"} for n in range(5)]}, "fields_attributes"),
        ({"fields_attributes": "nope"}, "fields_attributes"),
    ]
    for body, named in cases:
        answer = await client.patch("/api/v1/accounts/update_credentials", json=body, headers=auth)
        assert answer.status_code == 422, (body, answer.text)
        assert named in answer.json()["error"], answer.json()
    not_a_picture = await client.patch(
        "/api/v1/accounts/update_credentials",
        files={"header": ("x.png", b"not an image", "image/png")},
        headers=auth,
    )
    assert not_a_picture.status_code == 422
    outside = await client.patch("/api/v1/accounts/update_credentials", json={"note": "hi"}, headers=reader)
    assert outside.status_code == 403
    assert (await client.patch("/api/v1/accounts/update_credentials", json={})).status_code == 401


async def test_account_statuses_with_filters_pinned_and_paging(instance: Instance) -> None:
    client = instance.client
    alice, auth = await api_user(instance, "alice")
    _, bob_auth = await api_user(instance, "bob")

    async def post(text: str, **extra: object) -> str:
        body = await ok(await client.post("/api/v1/statuses", json={"status": text, **extra}, headers=auth))
        return str(body["id"])

    first = await post("First #news")
    second = await post("Second")
    reply_to_self = await post("More on that", in_reply_to_id=second)
    bob_post = await ok(await client.post("/api/v1/statuses", json={"status": "Bob here"}, headers=bob_auth))
    reply_to_bob = await post("@bob hi", in_reply_to_id=bob_post["id"])
    boost = await ok(await client.post(f"/api/v1/statuses/{bob_post['id']}/reblog", headers=auth))
    followers_only = await post("Only followers", visibility="private")

    def ids(items: list[dict[str, object]]) -> list[object]:
        return [item["id"] for item in items]

    path = f"/api/v1/accounts/{alice.id}/statuses"
    everything = await ok(await client.get(path, headers=auth))
    assert ids(everything) == [followers_only, boost["id"], reply_to_bob, reply_to_self, second, first]
    # A visitor sees the public posts only.
    assert followers_only not in ids(await ok(await client.get(path)))
    no_replies = await ok(await client.get(path, params={"exclude_replies": "true"}, headers=auth))
    assert reply_to_bob not in ids(no_replies) and reply_to_self in ids(no_replies)
    no_boosts = await ok(await client.get(path, params={"exclude_reblogs": "1"}, headers=auth))
    assert boost["id"] not in ids(no_boosts)
    tagged = await ok(await client.get(path, params={"tagged": "News"}, headers=auth))
    assert ids(tagged) == [first]
    assert await ok(await client.get(path, params={"only_media": "true"}, headers=auth)) == []

    paged = await client.get(path, params={"limit": "2", "exclude_reblogs": "true"}, headers=auth)
    assert ids(paged.json()) == [followers_only, reply_to_bob]
    next_url = paged.headers["link"].split(";")[0].strip("<>")
    assert "exclude_reblogs=true" in next_url
    assert ids(await ok(await client.get(next_url, headers=auth))) == [reply_to_self, second]

    assert await ok(await client.get(path, params={"pinned": "true"}, headers=auth)) == []
    await PostingService(instance.context).pin(alice, int(second))
    pinned = await client.get(path, params={"pinned": "true"})
    assert ids(pinned.json()) == [second] and "link" not in pinned.headers
    assert (await client.get("/api/v1/accounts/424242/statuses")).status_code == 404
    assert (await client.get(path, params={"limit": "many"})).status_code == 422


async def test_report_an_account_with_posts(instance: Instance) -> None:
    client = instance.client
    _, auth = await api_user(instance, "alice")
    bob, bob_auth = await api_user(instance, "bob")
    bad = await ok(await client.post("/api/v1/statuses", json={"status": "Spam spam"}, headers=bob_auth))
    report = await ok(
        await client.post(
            "/api/v1/reports",
            json={
                "account_id": str(bob.id),
                "status_ids": [bad["id"]],
                "comment": "Spam",
                "category": "spam",
            },
            headers=auth,
        )
    )
    assert report["target_account"]["id"] == str(bob.id) and report["status_ids"] == [bad["id"]]
    assert report["comment"] == "Spam" and report["forwarded"] is False and report["action_taken"] is False
    assert report["category"] == "spam" and report["created_at"].endswith("Z")
    async with instance.context.sessions() as session:
        stored = (await session.scalars(select(Report))).one()
        audited = (
            await session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == "report.create"))
        ).all()
    assert stored.post_ids == [int(bad["id"])] and len(audited) == 1
    for body, named in (
        ({}, "account_id"),
        ({"account_id": str(bob.id), "category": "rude"}, "category"),
        ({"account_id": str(bob.id), "status_ids": ["x"]}, "status_ids"),
        ({"account_id": str(bob.id), "comment": "x" * 5000}, "comment"),
    ):
        answer = await client.post("/api/v1/reports", json=body, headers=auth)
        assert answer.status_code == 422 and named in answer.json()["error"], answer.text
    assert (
        await client.post("/api/v1/reports", json={"account_id": "999999"}, headers=auth)
    ).status_code == 404


async def test_a_violation_report_keeps_the_rules_it_names_for_the_admins(instance: Instance) -> None:
    client = instance.client
    _, auth = await api_user(instance, "alice")
    bob, _ = await api_user(instance, "bob")
    await InstanceService(instance.context).update_about(
        InstanceAbout(name="Town Hall", description="", rules=["Be kind", "No advertising"])
    )
    rules = await ok(await client.get("/api/v1/instance/rules"))
    advertising = next(rule["id"] for rule in rules if rule["text"] == "No advertising")
    # A form, as Tusky sends it: rule_ids[] repeated.
    report = await ok(
        await client.post(
            "/api/v1/reports",
            data={"account_id": str(bob.id), "category": "violation", "rule_ids[]": [advertising]},
            headers=auth,
        )
    )
    assert report["category"] == "violation" and report["rule_ids"] == [advertising]
    unknown = await client.post(
        "/api/v1/reports",
        json={"account_id": str(bob.id), "category": "violation", "rule_ids": ["7"]},
        headers=auth,
    )
    assert unknown.status_code == 422 and "rule_ids" in unknown.json()["error"]
    # '²' is a digit to str.isdigit() but not a number to int(): refused, not a 500.
    for field, value in (("rule_ids", ["²"]), ("status_ids", ["²"]), ("account_id", "²")):
        body = {"account_id": str(bob.id), "category": "violation", field: value}
        odd = await client.post("/api/v1/reports", json=body, headers=auth)
        assert odd.status_code == 422 and field in odd.json()["error"], odd.text
