"""Follow, Undo(Follow), and Accept/Reject of our own Follows, with the Accept actually delivered."""

from __future__ import annotations

import pytest

from app.models import Account, DeliveryJob, Follow, FollowState, Notification, OutboxActivity
from app.services.follow_requests import FollowRequestService
from app.services.following import FollowingService
from tests.federation.inbox_peer import (
    ALICE,
    Peer,
    PeerActor,
    activity,
    local_account,
    process_inbox,
    rows,
    run_worker,
)
from tests.lab import Instance, Lab


async def account(instance: Instance, uri: str) -> Account:
    [found] = await rows(instance, Account, Account.uri == uri)
    return found


async def test_follow_is_accepted_and_the_accept_embeds_the_original_follow(
    here: Instance, peer: Peer, bob: PeerActor
) -> None:
    follow = activity(bob, "Follow", ALICE, "follows/1")
    assert (await peer.deliver(here, bob, follow)).status_code == 202
    await process_inbox(here)

    alice, remote = await account(here, ALICE), await account(here, bob.uri)
    [row] = await rows(here, Follow)
    assert (row.follower_id, row.followee_id, row.state, row.uri) == (
        remote.id,
        alice.id,
        FollowState.ACCEPTED,
        follow["id"],
    )
    [accept] = await rows(here, OutboxActivity)
    assert accept.activity_type == "Accept"
    assert accept.payload["actor"] == ALICE
    assert accept.payload["object"] == {
        "id": follow["id"],
        "type": "Follow",
        "actor": bob.uri,
        "object": ALICE,
    }
    [job] = await rows(here, DeliveryJob)
    assert job.inbox_url == f"{bob.uri}/inbox" and job.activity_id == accept.id
    [notification] = await rows(here, Notification)
    assert (notification.type, notification.account_id, notification.from_account_id) == (
        "follow",
        alice.id,
        remote.id,
    )

    # And the Accept reaches the follower's inbox.
    await run_worker(here)
    [(url, delivered)] = peer.inbox
    assert url == f"{bob.uri}/inbox"
    assert delivered["type"] == "Accept" and delivered["object"]["id"] == follow["id"]


async def test_locked_account_gets_a_follow_request_then_approves(
    here: Instance, peer: Peer, bob: PeerActor
) -> None:
    locked = await local_account(here, "locked")
    async with here.context.sessions() as session:
        locked.manually_approves_followers = True
        session.add(locked)
        await session.commit()
    follow = activity(bob, "Follow", locked.uri, "follows/2")
    await peer.deliver(here, bob, follow)
    await process_inbox(here)
    [row] = await rows(here, Follow)
    assert row.state == FollowState.PENDING
    assert await rows(here, OutboxActivity) == []
    [notification] = await rows(here, Notification)
    assert notification.type == "follow_request"

    service = FollowRequestService(here.context)
    remote = await account(here, bob.uri)
    assert [requester.uri for requester in await service.pending_requests(locked)] == [bob.uri]
    assert await service.approve(locked, remote)
    [row] = await rows(here, Follow)
    assert row.state == FollowState.ACCEPTED and row.accepted_at is not None
    [accept] = await rows(here, OutboxActivity)
    assert accept.payload["type"] == "Accept" and accept.payload["object"]["id"] == follow["id"]
    assert not await service.approve(locked, remote)


async def test_rejected_follow_request_sends_a_reject(here: Instance, peer: Peer, bob: PeerActor) -> None:
    locked = await local_account(here, "locked")
    async with here.context.sessions() as session:
        locked.manually_approves_followers = True
        session.add(locked)
        await session.commit()
    follow = activity(bob, "Follow", locked.uri, "follows/3")
    await peer.deliver(here, bob, follow)
    await process_inbox(here)
    assert await FollowRequestService(here.context).reject(locked, await account(here, bob.uri))
    assert await rows(here, Follow) == []
    [reject] = await rows(here, OutboxActivity)
    assert reject.payload["type"] == "Reject" and reject.payload["object"]["id"] == follow["id"]
    await run_worker(here)
    assert [delivered["type"] for _, delivered in peer.inbox] == ["Reject"]


async def test_undo_follow_removes_the_follower(here: Instance, peer: Peer, bob: PeerActor) -> None:
    follow = activity(bob, "Follow", ALICE, "follows/4")
    await peer.deliver(here, bob, follow)
    await process_inbox(here)
    undo = activity(bob, "Undo", {k: v for k, v in follow.items() if k != "@context"}, "follows/4/undo")
    assert (await peer.deliver(here, bob, undo)).status_code == 202
    await process_inbox(here)
    assert await rows(here, Follow) == []
    assert await rows(here, Notification) == []


async def test_undo_follow_by_id_only(here: Instance, peer: Peer, bob: PeerActor) -> None:
    follow = activity(bob, "Follow", ALICE, "follows/5")
    await peer.deliver(here, bob, follow)
    await process_inbox(here)
    await peer.deliver(here, bob, activity(bob, "Undo", follow["id"], "follows/5/undo"))
    await process_inbox(here)
    assert await rows(here, Follow) == []


async def test_concurrent_identical_follows_store_one_row(here: Instance, peer: Peer, bob: PeerActor) -> None:
    for number in range(6):
        await peer.deliver(here, bob, activity(bob, "Follow", ALICE, f"follows/c{number}"))
    await process_inbox(here)
    assert len(await rows(here, Follow)) == 1
    assert len(await rows(here, OutboxActivity)) == 6


async def test_repeated_follow_sends_the_accept_again(here: Instance, peer: Peer, bob: PeerActor) -> None:
    await peer.deliver(here, bob, activity(bob, "Follow", ALICE, "follows/6"))
    await process_inbox(here)
    await peer.deliver(here, bob, activity(bob, "Follow", ALICE, "follows/7"))
    await process_inbox(here)
    [row] = await rows(here, Follow)
    assert row.uri == "http://remote.test/users/bob#follows/7"
    accepts = await rows(here, OutboxActivity)
    assert sorted(accept.payload["object"]["id"] for accept in accepts) == [
        "http://remote.test/users/bob#follows/6",
        "http://remote.test/users/bob#follows/7",
    ]
    assert len(await rows(here, Notification)) == 1


async def test_follow_of_the_instance_actor_is_rejected(here: Instance, peer: Peer, bob: PeerActor) -> None:
    await peer.deliver(here, bob, activity(bob, "Follow", "http://a.test/actor", "follows/8"))
    await process_inbox(here)
    assert await rows(here, Follow) == []
    [reject] = await rows(here, OutboxActivity)
    assert reject.payload["type"] == "Reject"


async def our_pending_follow(here: Instance, peer: Peer, bob: PeerActor) -> Follow:
    alice = await account(here, ALICE)
    outcome = await FollowingService(here.context).follow(alice, bob.uri)
    assert outcome.pending
    return outcome.follow


@pytest.mark.parametrize("shape", ["embedded", "embedded-without-id", "id-only"])
async def test_accept_of_our_follow_confirms_it(
    here: Instance, peer: Peer, bob: PeerActor, shape: str
) -> None:
    ours = await our_pending_follow(here, peer, bob)
    embedded = {"id": ours.uri, "type": "Follow", "actor": ALICE, "object": bob.uri}
    obj: object = {
        "embedded": embedded,
        "embedded-without-id": {k: v for k, v in embedded.items() if k != "id"},
        "id-only": ours.uri,
    }[shape]
    assert (await peer.deliver(here, bob, activity(bob, "Accept", obj, "accepts/1"))).status_code == 202
    await process_inbox(here)
    [row] = await rows(here, Follow)
    assert row.state == FollowState.ACCEPTED and row.accepted_at is not None


async def test_reject_of_our_follow_drops_it(here: Instance, peer: Peer, bob: PeerActor) -> None:
    ours = await our_pending_follow(here, peer, bob)
    reject = activity(
        bob, "Reject", {"id": ours.uri, "type": "Follow", "actor": ALICE, "object": bob.uri}, "rejects/1"
    )
    await peer.deliver(here, bob, reject)
    await process_inbox(here)
    assert await rows(here, Follow) == []


async def test_accept_from_someone_else_changes_nothing(here: Instance, peer: Peer, bob: PeerActor) -> None:
    ours = await our_pending_follow(here, peer, bob)
    mallory = peer.actor("http://remote.test/users/mallory")
    accept = activity(
        mallory, "Accept", {"id": ours.uri, "type": "Follow", "actor": ALICE, "object": bob.uri}, "a/1"
    )
    await peer.deliver(here, mallory, accept)
    await process_inbox(here)
    [row] = await rows(here, Follow)
    assert row.state == FollowState.PENDING


async def test_two_herolds_follow_round_trip(lab: Lab) -> None:
    """b's account follows a's: the Follow is delivered, a accepts, the Accept is delivered, b confirms."""
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    bea = await local_account(b, "bea")
    outcome = await FollowingService(b.context).follow(bea, "@alice@a.test")
    assert outcome.pending
    await run_worker(b, a, b)
    [on_a] = await rows(a, Follow)
    assert on_a.state == FollowState.ACCEPTED and on_a.uri == outcome.follow.uri
    [on_b] = await rows(b, Follow)
    assert on_b.state == FollowState.ACCEPTED
    [notification] = await rows(a, Notification)
    assert notification.account_id == alice.id and notification.type == "follow"


async def test_a_post_right_after_the_accept_reaches_the_new_follower(
    here: Instance, peer: Peer, bob: PeerActor
) -> None:
    """One long-running worker: the batch that applies the Accept has already read who follows
    bob (nobody yet); his first post, a moment later, must still reach alice's home."""
    from app.federation.worker import Worker, build_worker
    from app.models import TimelineEntry
    from app.queue_names import INBOX_QUEUE
    from tests.federation.inbox_peer import create, note

    ours = await our_pending_follow(here, peer, bob)
    full = build_worker(here.context)
    worker = Worker(here.context, [queue for queue in full.queues if queue.name == INBOX_QUEUE])
    accept = activity(
        bob, "Accept", {"id": ours.uri, "type": "Follow", "actor": ALICE, "object": bob.uri}, "a/1"
    )
    assert (await peer.deliver(here, bob, accept)).status_code == 202
    await worker.run_until_idle()
    assert (await peer.deliver(here, bob, create(bob, note(bob, 1)))).status_code == 202
    await worker.run_until_idle()
    alice = await account(here, ALICE)
    assert len(await rows(here, TimelineEntry, TimelineEntry.account_id == alice.id)) == 1
