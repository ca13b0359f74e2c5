"""Backpressure: an inbox whose worker is too far behind answers 503 with Retry-After, and accepts
again by itself once the backlog has been worked off."""

from __future__ import annotations

import asyncio

from app.models import JobState
from app.services.inbox_backlog import BACKLOG_CHECK_SECONDS, inbox_backlog
from tests.federation.inbox_peer import (
    ALICE,
    Peer,
    PeerActor,
    activity,
    home_of_alice,
    inbox_items,
    process_inbox,
)
from tests.lab import Lab

LIMIT = 1.0


async def test_an_inbox_past_its_backlog_limit_answers_503_until_the_worker_catches_up(
    lab: Lab, peer: Peer, bob: PeerActor
) -> None:
    here, _alice = await home_of_alice(lab)
    here.context.settings.inbox_backlog_limit_seconds = LIMIT
    accepted = await peer.deliver(here, bob, activity(bob, "Follow", ALICE, "follows/1"))
    assert accepted.status_code == 202, accepted.text

    # Nothing processes it (no worker runs): past the limit, new activities are refused.
    await asyncio.sleep(LIMIT + BACKLOG_CHECK_SECONDS + 0.2)
    refused = await peer.deliver(here, bob, activity(bob, "Like", ALICE, "likes/1"))
    assert refused.status_code == 503
    assert refused.headers["Retry-After"].isdigit() and int(refused.headers["Retry-After"]) > 0
    assert "behind" in refused.json()["error"]
    assert [item.activity_type for item in await inbox_items(here)] == ["Follow"]
    backlog = await inbox_backlog(here.context)
    assert backlog.size == 1 and backlog.oldest_seconds > LIMIT

    # The worker catches up; within the check interval the inbox accepts again.
    await process_inbox(here)
    await asyncio.sleep(BACKLOG_CHECK_SECONDS + 0.1)
    retried = await peer.deliver(here, bob, activity(bob, "Like", ALICE, "likes/1"))
    assert retried.status_code == 202, retried.text
    states = {item.activity_type: item.state for item in await inbox_items(here)}
    assert states == {"Follow": JobState.DONE, "Like": JobState.QUEUED}


async def test_no_limit_means_no_refusal(lab: Lab, peer: Peer, bob: PeerActor) -> None:
    here, _alice = await home_of_alice(lab)
    here.context.settings.inbox_backlog_limit_seconds = 0
    await peer.deliver(here, bob, activity(bob, "Follow", ALICE, "follows/1"))
    await asyncio.sleep(BACKLOG_CHECK_SECONDS + 0.2)
    response = await peer.deliver(here, bob, activity(bob, "Like", ALICE, "likes/1"))
    assert response.status_code == 202, response.text
