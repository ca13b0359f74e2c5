"""The account endpoints in the federation lab: an app's follow, unfollow, block, removal of a
follower and forwarded report reach the other server as the web UI's do (signed activities that
the other side acts on)."""

from __future__ import annotations

import json

from sqlmodel import col, select

from app.models import Account, Follow, FollowState, Report
from app.services.following import FollowingService
from tests.api.account_helpers import ok, token_of
from tests.federation.delivery_helpers import local_account, settle
from tests.lab import Instance, Lab


async def stored(instance: Instance, uri: str) -> Account:
    async with instance.context.sessions() as session:
        found = await session.scalar(select(Account).where(col(Account.uri) == uri))
    assert found is not None
    return found


async def follows(instance: Instance) -> list[tuple[int, int, str]]:
    async with instance.context.sessions() as session:
        return [
            (row.follower_id, row.followee_id, row.state)
            for row in (await session.scalars(select(Follow))).all()
        ]


def sent(lab: Lab, kind: str) -> list[dict[str, object]]:
    found = []
    for request in lab.network.requests:
        if request.method == "POST" and request.url.path.endswith("inbox"):
            body = json.loads(request.content)
            if body.get("type") == kind:
                assert "Signature" in request.headers
                found.append(body)
    return found


async def test_follow_unfollow_block_and_remove_follower_through_the_api(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    bob = await local_account(b, "bob")
    auth = await token_of(a, alice)
    # alice has looked bob up (search resolves him), so the app knows his id here.
    await FollowingService(b.context).follow(bob, "@alice@a.test")
    await settle(lab)
    bob_here = await stored(a, bob.uri)

    requested = await ok(await a.client.post(f"/api/v1/accounts/{bob_here.id}/follow", headers=auth))
    assert requested["requested"] is True  # pending until b.test accepts
    await settle(lab)
    assert sent(lab, "Follow")
    relation = await ok(
        await a.client.get("/api/v1/accounts/relationships", params={"id[]": str(bob_here.id)}, headers=auth)
    )
    assert relation[0]["following"] is True and relation[0]["followed_by"] is True
    alice_there = await stored(b, alice.uri)
    assert (bob.id, alice_there.id, FollowState.ACCEPTED) in await follows(b)

    await ok(await a.client.post(f"/api/v1/accounts/{bob_here.id}/unfollow", headers=auth))
    await settle(lab)
    assert len(sent(lab, "Undo")) == 1
    # Only bob's follow of alice is left on b.test.
    assert await follows(b) == [(bob.id, alice_there.id, FollowState.ACCEPTED)]

    removed = await ok(
        await a.client.post(f"/api/v1/accounts/{bob_here.id}/remove_from_followers", headers=auth)
    )
    assert removed["followed_by"] is False
    await settle(lab)
    assert sent(lab, "Reject") and await follows(b) == []

    await ok(await a.client.post(f"/api/v1/accounts/{bob_here.id}/follow", headers=auth))
    await settle(lab)
    assert len(await follows(b)) == 1
    blocked = await ok(await a.client.post(f"/api/v1/accounts/{bob_here.id}/block", headers=auth))
    assert blocked["blocking"] is True and blocked["following"] is False
    await settle(lab)
    assert sent(lab, "Block") and await follows(b) == [] and await follows(a) == []


async def test_a_report_forwarded_from_an_app_reaches_the_other_server(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    bob = await local_account(b, "bob")
    auth = await token_of(a, alice)
    await FollowingService(a.context).follow(alice, "@bob@b.test")
    await settle(lab)
    bob_here = await stored(a, bob.uri)
    report = await ok(
        await a.client.post(
            "/api/v1/reports",
            data={"account_id": str(bob_here.id), "comment": "Abuse", "forward": "true"},
            headers=auth,
        )
    )
    assert report["forwarded"] is True
    await settle(lab)
    flags = sent(lab, "Flag")
    assert len(flags) == 1 and flags[0]["actor"] != alice.uri  # from the instance actor, as the web UI sends
    async with b.context.sessions() as session:
        arrived = (await session.scalars(select(Report))).one()
    assert arrived.comment == "Abuse" and arrived.target_account_id == bob.id
