"""Rate limits: per remote host at the inbox, per account when posting; 429 with X-RateLimit-* headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.models import Role
from app.services.rate_limits import LoginRateLimiter, RateLimiter
from tests.federation.inbox_peer import Peer, PeerActor, local_account
from tests.lab import Instance, Lab
from tests.web.helpers import PASSWORD, Browser, logged_in, make_user, new_client


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_counts_and_forgets() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 60, clock=clock, max_keys=3)
    first, second, third = (limiter.hit("a") for _ in range(3))
    assert (first.allowed, first.remaining) == (True, 1)
    assert (second.allowed, second.remaining) == (True, 0)
    assert not third.allowed and third.headers()["Retry-After"] == "60"
    assert limiter.hit("b").allowed  # per key
    clock.now += 61
    assert limiter.hit("a").allowed
    for key in "cdefg":
        limiter.hit(key)
    assert len(limiter._hits) <= 3  # bounded memory


async def test_inbox_is_limited_per_remote_host(lab: Lab) -> None:
    here = await lab.instance("a.test", embedded_worker=False)
    await local_account(here, "alice")
    here.context.rate_limits.inbox_per_host = RateLimiter(2, 300)
    peer = Peer(lab).host("remote.test")
    bob: PeerActor = peer.actor("http://remote.test/users/bob")
    other = Peer(lab).host("other.test").actor("http://other.test/users/carol")
    follow = {"type": "Follow", "actor": bob.uri, "object": "http://a.test/users/alice"}
    for number in range(2):
        ok = await peer.deliver(here, bob, {**follow, "id": f"{bob.uri}#follows/{number}"})
        assert ok.status_code == 202
    refused = await peer.deliver(here, bob, {**follow, "id": f"{bob.uri}#follows/9"})
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == "2" and refused.headers["X-RateLimit-Remaining"] == "0"
    assert "X-RateLimit-Reset" in refused.headers and int(refused.headers["Retry-After"]) > 0
    elsewhere = {
        "type": "Follow",
        "actor": other.uri,
        "object": "http://a.test/users/alice",
        "id": f"{other.uri}#f",
    }
    assert (await peer.deliver(here, other, elsewhere)).status_code == 202


async def test_forgeries_naming_a_peers_key_do_not_spend_its_inbox_budget(lab: Lab) -> None:
    here = await lab.instance("a.test", embedded_worker=False)
    await local_account(here, "alice")
    here.context.rate_limits.inbox_per_host = RateLimiter(2, 300)
    peer = Peer(lab).host("remote.test")
    bob: PeerActor = peer.actor("http://remote.test/users/bob")
    forger = PeerActor(uri=bob.uri, key=peer.next_key(), key_id=bob.key_id, document=bob.document)
    follow = {"type": "Follow", "actor": bob.uri, "object": "http://a.test/users/alice"}
    for number in range(5):
        forged = await peer.deliver(here, forger, {**follow, "id": f"{bob.uri}#forged/{number}"})
        assert forged.status_code == 401
    for number in range(2):
        genuine = await peer.deliver(here, bob, {**follow, "id": f"{bob.uri}#follows/{number}"})
        assert genuine.status_code == 202


async def test_unknown_keys_are_fetched_within_a_budget_per_host_and_known_ones_never_wait(lab: Lab) -> None:
    here = await lab.instance("a.test", embedded_worker=False)
    await local_account(here, "alice")
    here.context.rate_limits.key_fetches_per_host = RateLimiter(2, 300)
    peer = Peer(lab).host("remote.test")
    actors = [peer.actor(f"http://remote.test/users/u{number}") for number in range(3)]

    def follow(actor: PeerActor, tag: str) -> dict[str, str]:
        return {
            "type": "Follow",
            "actor": actor.uri,
            "object": "http://a.test/users/alice",
            "id": f"{actor.uri}#{tag}",
        }

    for actor in actors[:2]:
        assert (await peer.deliver(here, actor, follow(actor, "1"))).status_code == 202
    refused = await peer.deliver(here, actors[2], follow(actors[2], "1"))
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert peer.fetches(actors[2].key_id) == 0  # refused before any request to its server
    # Keys already known cost no fetch, so the budget never holds their senders back.
    assert (await peer.deliver(here, actors[0], follow(actors[0], "2"))).status_code == 202


@pytest.mark.parametrize("limit", [1])
async def test_posting_is_limited_per_account(instance: Instance, limit: int) -> None:
    instance.context.rate_limits.posts_per_account = RateLimiter(limit, 3 * 3600)
    browser = await logged_in(instance, "alice", role=Role.ADMIN)
    await browser.get("/compose")
    assert (
        await browser.post("/compose", {"text": "one", "author": "alice", "visibility": "public"})
    ).status_code == 303
    refused = await browser.post("/compose", {"text": "two", "author": "alice", "visibility": "public"})
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Remaining"] == "0" and "Retry-After" in refused.headers
    # A preview is no post.
    preview = await browser.post(
        "/compose", {"text": "p", "author": "alice", "visibility": "public", "action": "preview"}
    )
    assert preview.status_code == 200


async def test_login_refusal_says_which_limit_and_when_it_resets(instance: Instance) -> None:
    instance.context.rate_limits.logins = LoginRateLimiter(per_address=20, per_name_and_address=2, window=600)
    await make_user(instance, "alice")
    browser = Browser(new_client(instance))
    for _ in range(2):
        wrong = await browser.post("/login", {"username": "alice", "password": "guess guess"})
        assert wrong.status_code == 401
    before = datetime.now(UTC)
    refused = await browser.post("/login", {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == "2"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    reset = datetime.fromisoformat(refused.headers["X-RateLimit-Reset"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=590) <= reset <= before + timedelta(seconds=610)
    assert 590 <= int(refused.headers["Retry-After"]) <= 600
    # The address limit is the one that bites when many names are tried from one place.
    instance.context.rate_limits.logins = LoginRateLimiter(per_address=3, per_name_and_address=5, window=60)
    for number in range(3):
        await browser.post("/login", {"username": f"guess{number}", "password": "guess guess"})
    refused = await browser.post("/login", {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 429 and refused.headers["X-RateLimit-Limit"] == "3"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
