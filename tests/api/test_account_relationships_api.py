"""What an app does about other accounts: follow (with its options), unfollow, remove a follower,
block, mute (for a while, with or without notifications), a private note; relationships and the
lists (followers, following, requests, blocks, mutes, hidden domains), paged with Link headers."""

from __future__ import annotations

from typing import Any

from app.models import Account, Role
from app.models.base import utcnow
from app.services.oauth import OAuthService
from app.services.staff import StaffService
from tests.api.account_helpers import api_user, ok, token_of
from tests.lab import Instance
from tests.web.helpers import make_user

RELATIONSHIP_FIELDS = {
    "id",
    "following",
    "showing_reblogs",
    "notifying",
    "languages",
    "followed_by",
    "blocking",
    "blocked_by",
    "muting",
    "muting_notifications",
    "requested",
    "requested_by",
    "domain_blocking",
    "endorsed",
    "note",
}


async def relationship_of(instance: Instance, auth: dict[str, str], account_id: int) -> dict[str, Any]:
    found = await ok(
        await instance.client.get(
            "/api/v1/accounts/relationships", params={"id[]": str(account_id)}, headers=auth
        )
    )
    assert len(found) == 1
    relation: dict[str, Any] = found[0]
    return relation


async def test_follow_with_options_unfollow_and_relationships(instance: Instance) -> None:
    client = instance.client
    alice, alice_auth = await api_user(instance, "alice")
    bob, bob_auth = await api_user(instance, "bob")

    followed = await ok(
        await client.post(
            f"/api/v1/accounts/{bob.id}/follow",
            json={"reblogs": False, "notify": True, "languages": ["de", "en"]},
            headers=alice_auth,
        )
    )
    assert set(followed) == RELATIONSHIP_FIELDS
    assert followed["id"] == str(bob.id)
    assert followed["following"] is True and followed["requested"] is False
    assert followed["showing_reblogs"] is False and followed["notifying"] is True
    assert followed["languages"] == ["de", "en"]
    # Following again with a form changes the options, as on Mastodon.
    again = await ok(
        await client.post(f"/api/v1/accounts/{bob.id}/follow", data={"reblogs": "true"}, headers=alice_auth)
    )
    assert again["showing_reblogs"] is True and again["notifying"] is True

    seen_by_bob = await ok(
        await client.get(
            "/api/v1/accounts/relationships",
            params=[("id[]", str(alice.id)), ("id[]", "999999"), ("id[]", str(bob.id))],
            headers=bob_auth,
        )
    )
    assert [item["id"] for item in seen_by_bob] == [str(alice.id), str(bob.id)]
    assert seen_by_bob[0]["followed_by"] is True and seen_by_bob[0]["following"] is False

    followers = await ok(await client.get(f"/api/v1/accounts/{bob.id}/followers"))
    assert [item["acct"] for item in followers] == ["alice"]
    following = await ok(await client.get(f"/api/v1/accounts/{alice.id}/following", headers=alice_auth))
    assert [item["acct"] for item in following] == ["bob"]

    unfollowed = await ok(await client.post(f"/api/v1/accounts/{bob.id}/unfollow", headers=alice_auth))
    assert unfollowed["following"] is False
    assert await ok(await client.get(f"/api/v1/accounts/{bob.id}/followers")) == []


async def test_locked_account_requests_authorize_reject_and_remove_from_followers(instance: Instance) -> None:
    client = instance.client
    alice, alice_auth = await api_user(instance, "alice")
    bob, bob_auth = await api_user(instance, "bob")
    carol, carol_auth = await api_user(instance, "carol")
    locked = await ok(
        await client.patch("/api/v1/accounts/update_credentials", data={"locked": "true"}, headers=bob_auth)
    )
    assert locked["locked"] is True

    requested = await ok(await client.post(f"/api/v1/accounts/{bob.id}/follow", headers=alice_auth))
    assert requested["requested"] is True and requested["following"] is False
    await client.post(f"/api/v1/accounts/{bob.id}/follow", headers=carol_auth)
    waiting = await ok(await client.get("/api/v1/follow_requests", headers=bob_auth))
    assert [item["acct"] for item in waiting] == ["carol", "alice"]
    me = await ok(await client.get("/api/v1/accounts/verify_credentials", headers=bob_auth))
    assert me["source"]["follow_requests_count"] == 2
    assert (await relationship_of(instance, bob_auth, alice.id))["requested_by"] is True

    authorized = await ok(
        await client.post(f"/api/v1/follow_requests/{alice.id}/authorize", headers=bob_auth)
    )
    assert authorized["followed_by"] is True and authorized["requested_by"] is False
    rejected = await ok(await client.post(f"/api/v1/follow_requests/{carol.id}/reject", headers=bob_auth))
    assert rejected["followed_by"] is False and rejected["requested_by"] is False
    assert (await relationship_of(instance, carol_auth, bob.id))["requested"] is False

    # Only a waiting request can be answered: alice's is accepted, carol's gone, a made-up one nobody's.
    for someone in (alice.id, carol.id, 999999):
        answer = await client.post(f"/api/v1/follow_requests/{someone}/reject", headers=bob_auth)
        assert answer.status_code == 404 and answer.json() == {"error": "Record not found"}
    assert (
        await client.post(f"/api/v1/follow_requests/{bob.id}/authorize", headers=alice_auth)
    ).status_code == 404
    removed = await ok(
        await client.post(f"/api/v1/accounts/{alice.id}/remove_from_followers", headers=bob_auth)
    )
    assert removed["followed_by"] is False
    assert (await relationship_of(instance, alice_auth, bob.id))["following"] is False


async def test_block_mute_note_and_their_lists(instance: Instance) -> None:
    client = instance.client
    alice, alice_auth = await api_user(instance, "alice")
    bob, bob_auth = await api_user(instance, "bob")
    carol, _ = await api_user(instance, "carol")
    await client.post(f"/api/v1/accounts/{alice.id}/follow", headers=bob_auth)

    blocked = await ok(await client.post(f"/api/v1/accounts/{bob.id}/block", headers=alice_auth))
    assert blocked["blocking"] is True and blocked["followed_by"] is False
    assert (await relationship_of(instance, bob_auth, alice.id))["blocked_by"] is True
    # Neither side of a block may follow the other.
    refused = await client.post(f"/api/v1/accounts/{alice.id}/follow", headers=bob_auth)
    assert refused.status_code == 422 and "block" in refused.json()["error"]
    blocks = await ok(await client.get("/api/v1/blocks", headers=alice_auth))
    assert [item["acct"] for item in blocks] == ["bob"]
    # Blocked, bob sees none of alice's follows (as on Mastodon); others still do.
    await client.post(f"/api/v1/accounts/{carol.id}/follow", headers=alice_auth)
    assert await ok(await client.get(f"/api/v1/accounts/{alice.id}/following", headers=bob_auth)) == []
    assert len(await ok(await client.get(f"/api/v1/accounts/{alice.id}/following"))) == 1
    await client.post(f"/api/v1/accounts/{carol.id}/unfollow", headers=alice_auth)
    unblocked = await ok(await client.post(f"/api/v1/accounts/{bob.id}/unblock", headers=alice_auth))
    assert unblocked["blocking"] is False
    assert await ok(await client.get("/api/v1/blocks", headers=alice_auth)) == []

    muted = await ok(
        await client.post(
            f"/api/v1/accounts/{carol.id}/mute",
            json={"notifications": False, "duration": 3600},
            headers=alice_auth,
        )
    )
    assert muted["muting"] is True and muted["muting_notifications"] is False
    mutes = await ok(await client.get("/api/v1/mutes", headers=alice_auth))
    assert [item["acct"] for item in mutes] == ["carol"] and mutes[0]["mute_expires_at"].endswith("Z")
    forever = await ok(await client.post(f"/api/v1/accounts/{carol.id}/mute", headers=alice_auth))
    assert forever["muting_notifications"] is True
    assert (await ok(await client.get("/api/v1/mutes", headers=alice_auth)))[0]["mute_expires_at"] is None
    unmuted = await ok(await client.post(f"/api/v1/accounts/{carol.id}/unmute", headers=alice_auth))
    assert unmuted["muting"] is False

    noted = await ok(
        await client.post(
            f"/api/v1/accounts/{carol.id}/note", json={"comment": "met at FOSDEM"}, headers=alice_auth
        )
    )
    assert noted["note"] == "met at FOSDEM"
    assert (await relationship_of(instance, alice_auth, carol.id))["note"] == "met at FOSDEM"


async def test_own_domain_blocks(instance: Instance) -> None:
    client = instance.client
    _, auth = await api_user(instance, "alice")
    for domain in ("spam.example", "Noise.Example"):
        assert (
            await ok(await client.post("/api/v1/domain_blocks", data={"domain": domain}, headers=auth)) == {}
        )
    listed = await client.get("/api/v1/domain_blocks", params={"limit": "1"}, headers=auth)
    assert listed.json() == ["noise.example"]
    assert 'rel="next"' in listed.headers["link"]
    next_url = listed.headers["link"].split(";")[0].strip("<>")
    older = await ok(await client.get(next_url, headers=auth))
    assert older == ["spam.example"]
    await ok(
        await client.request(
            "DELETE", "/api/v1/domain_blocks", params={"domain": "spam.example"}, headers=auth
        )
    )
    assert await ok(await client.get("/api/v1/domain_blocks", headers=auth)) == ["noise.example"]
    bad = await client.post("/api/v1/domain_blocks", data={"domain": ""}, headers=auth)
    assert bad.status_code == 422 and "domain" in bad.json()["error"]


async def test_followers_page_with_link_headers_that_keep_other_parameters(instance: Instance) -> None:
    client = instance.client
    star, _ = await api_user(instance, "star")
    for index in range(3):
        _, auth = await api_user(instance, f"fan{index}")
        await ok(await client.post(f"/api/v1/accounts/{star.id}/follow", headers=auth))
    first = await client.get(f"/api/v1/accounts/{star.id}/followers", params={"limit": "2"})
    assert [item["acct"] for item in first.json()] == ["fan2", "fan1"]
    # Local accounts' counts, as their profile pages count them, in the lists too.
    assert [item["following_count"] for item in first.json()] == [1, 1]
    assert (await ok(await client.get(f"/api/v1/accounts/{star.id}")))["followers_count"] == 3
    link = first.headers["link"]
    assert "limit=2" in link and 'rel="next"' in link and 'rel="prev"' in link
    rest = await ok(await client.get(link.split(";")[0].strip("<>")))
    assert [item["acct"] for item in rest] == ["fan0"]
    assert (
        await client.get(f"/api/v1/accounts/{star.id}/followers", params={"max_id": "x"})
    ).status_code == 422


async def test_scopes_tokens_and_unknown_accounts(instance: Instance) -> None:
    client = instance.client
    _, reader = await api_user(instance, "reader", scopes="read")
    bob, bob_auth = await api_user(instance, "bob")
    _, follows_only = await api_user(instance, "follower", scopes="follow")
    for path in ("follow", "unfollow", "block", "mute", "remove_from_followers", "note"):
        assert (await client.post(f"/api/v1/accounts/{bob.id}/{path}")).status_code == 401
        answer = await client.post(f"/api/v1/accounts/{bob.id}/{path}", headers=reader)
        assert answer.status_code == 403, path
        assert answer.json() == {"error": "This action is outside the authorized scopes"}
    # `follow` grants following, blocking and muting, and reading those lists.
    assert (await client.post(f"/api/v1/accounts/{bob.id}/follow", headers=follows_only)).status_code == 200
    assert (await client.get("/api/v1/blocks", headers=follows_only)).status_code == 200
    for path in ("/api/v1/blocks", "/api/v1/mutes", "/api/v1/follow_requests", "/api/v1/domain_blocks"):
        assert (await client.get(path)).status_code == 401
    for missing in ("999999", "abc"):
        answer = await client.post(f"/api/v1/accounts/{missing}/follow", headers=bob_auth)
        assert answer.status_code == 404 and answer.json() == {"error": "Record not found"}
        assert (await client.get(f"/api/v1/accounts/{missing}/followers")).status_code == 404
    bad_ids = await client.get("/api/v1/accounts/relationships", params={"id[]": "x1"}, headers=bob_auth)
    assert bad_ids.status_code == 422 and "id" in bad_ids.json()["error"]
    too_long = await client.post(
        f"/api/v1/accounts/{bob.id}/mute", json={"duration": "soon"}, headers=bob_auth
    )
    assert too_long.status_code == 422 and "duration" in too_long.json()["error"]
    itself = await client.post(f"/api/v1/accounts/{bob.id}/follow", headers=bob_auth)
    assert itself.status_code == 422


async def test_familiar_followers(instance: Instance) -> None:
    client = instance.client
    alice, alice_auth = await api_user(instance, "alice")
    bob, bob_auth = await api_user(instance, "bob")
    carol, _ = await api_user(instance, "carol")
    await ok(await client.post(f"/api/v1/accounts/{bob.id}/follow", headers=alice_auth))
    await ok(await client.post(f"/api/v1/accounts/{carol.id}/follow", headers=bob_auth))
    familiar = await ok(
        await client.get(
            "/api/v1/accounts/familiar_followers", params={"id[]": str(carol.id)}, headers=alice_auth
        )
    )
    assert familiar == [{"id": str(carol.id), "accounts": [familiar[0]["accounts"][0]]}]
    assert familiar[0]["accounts"][0]["acct"] == "bob"
    del alice


async def test_an_organisation_token_follows_as_the_organisation(instance: Instance) -> None:
    client = instance.client
    boss, _ = await make_user(instance, "boss", role=Role.ADMIN)
    _, townhall = await make_user(instance, "townhall", organization=True)
    alice, _ = await api_user(instance, "alice")
    bob, _ = await api_user(instance, "bob")
    staff = StaffService(instance.context)
    alice_user = next(member.user for member in await staff.members() if member.account.username == "alice")
    await staff.grant_delegate(townhall.id, alice_user.id, by=boss)
    token = await OAuthService(instance.context).issue_personal_token(
        alice_user, scopes="read write follow", app_name="org app", acting_as=townhall
    )
    org = {"Authorization": f"Bearer {token}"}
    followed = await ok(await client.post(f"/api/v1/accounts/{bob.id}/follow", headers=org))
    assert followed["following"] is True
    followers = await ok(await client.get(f"/api/v1/accounts/{bob.id}/followers"))
    assert [item["acct"] for item in followers] == ["townhall"]
    # The staff member's own relationship is untouched.
    alice_auth = await token_of(instance, alice)
    assert (await relationship_of(instance, alice_auth, bob.id))["following"] is False


async def test_relationships_leave_out_suspended_accounts_unless_asked(instance: Instance) -> None:
    client = instance.client
    _, auth = await api_user(instance, "alice")
    bob, _ = await api_user(instance, "bob")
    async with instance.context.sessions() as session:
        stored = await session.get(Account, bob.id)
        assert stored is not None
        stored.suspended_at = utcnow()
        session.add(stored)
        await session.commit()
    path = "/api/v1/accounts/relationships"
    assert await ok(await client.get(path, params={"id[]": str(bob.id)}, headers=auth)) == []
    shown = await ok(
        await client.get(path, params={"id[]": str(bob.id), "with_suspended": "true"}, headers=auth)
    )
    assert [item["id"] for item in shown] == [str(bob.id)]


async def test_bad_input_is_422_naming_the_field_never_500(instance: Instance) -> None:
    client = instance.client
    alice, auth = await api_user(instance, "alice")
    bob, _ = await api_user(instance, "bob")
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"/api/v1/accounts/{bob.id}/follow", {"json": {"languages": ["english!"]}}),
        ("POST", f"/api/v1/accounts/{bob.id}/follow", {"json": {"languages": 5}}),
        ("POST", f"/api/v1/accounts/{bob.id}/follow", {"json": {"reblogs": "maybe"}}),
        ("POST", f"/api/v1/accounts/{bob.id}/follow", {"json": {"languages": [f"l{n}" for n in range(30)]}}),
        ("POST", f"/api/v1/accounts/{bob.id}/mute", {"json": {"duration": "99999999999999999999"}}),
        ("POST", f"/api/v1/accounts/{bob.id}/mute", {"json": {"notifications": {"a": 1}}}),
        ("POST", f"/api/v1/accounts/{bob.id}/note", {"json": {"comment": "x" * 5000}}),
        ("POST", f"/api/v1/accounts/{bob.id}/note", {"json": {"comment": ["a", "b"]}}),
        ("POST", "/api/v1/domain_blocks", {"json": {"domain": "http://bad domain/"}}),
        ("GET", "/api/v1/accounts/relationships", {"params": [("id[]", str(n)) for n in range(101)]}),
        ("GET", "/api/v1/blocks", {"params": {"limit": "-3"}}),
        ("GET", "/api/v1/mutes", {"params": {"max_id": "99999999999999999999999"}}),
        ("PATCH", "/api/v1/accounts/update_credentials", {"json": {"note": {"text": "hi"}}}),
        ("PATCH", "/api/v1/accounts/update_credentials", {"json": {"source": "private"}}),
        ("PATCH", "/api/v1/accounts/update_credentials", {"json": {"fields_attributes": {"x": {"name": 1}}}}),
        ("PATCH", "/api/v1/accounts/update_credentials", {"data": {"fields_attributes[a][name]": "x"}}),
        ("PATCH", "/api/v1/accounts/update_credentials", {"data": {"source[sensitive]": "perhaps"}}),
    ]
    for method, path, kwargs in cases:
        answer = await client.request(method, path, headers=auth, **kwargs)
        assert answer.status_code == 422, (method, path, kwargs, answer.status_code, answer.text)
        assert isinstance(answer.json()["error"], str) and answer.json()["error"]
    del alice
