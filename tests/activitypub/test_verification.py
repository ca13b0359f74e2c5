"""RequestVerifier: Mastodon's twelve signature cases end to end (key looked up as the inbox does),
and the rules about which stored keys are believed and how often keys are fetched."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from app.activitypub.signatures import SignatureError, parse_signed_request
from app.activitypub.verification import RequestVerifier, VerificationError
from app.models import Account
from tests.federation.inbox_peer import Peer, PeerActor, sign_cavage
from tests.lab import Instance, Lab

FIXTURE = (
    Path(__file__).resolve().parent.parent / "fixtures" / "signature_vectors" / "mastodon-draft-cavage.json"
)
VECTORS: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
NOW = datetime.fromisoformat(VECTORS["now"].replace("Z", "+00:00"))


@pytest.fixture
async def here(lab: Lab) -> Instance:
    return await lab.instance("a.test", embedded_worker=False)


async def store_vector_actor(here: Instance) -> None:
    async with here.context.sessions() as session:
        session.add(
            Account(
                username="bob",
                domain="remote.domain",
                uri=VECTORS["actor_id"],
                inbox_url=f"{VECTORS['actor_id']}/inbox",
                key_id=VECTORS["key_id"],
                public_key_pem=VECTORS["public_key_pem"],
                fetched_at=datetime.now(UTC),
            )
        )
        await session.commit()


async def verdict(verifier: RequestVerifier, case: dict[str, Any]) -> str:
    path, _, query = case["path"].partition("?")
    body = case.get("body")
    try:
        signed = parse_signed_request(
            method=case["method"],
            path=path,
            query=query,
            headers=case["headers"],
            body=body.encode() if body is not None else None,
            now=NOW,
        )
        await verifier.verify(signed)
    except (SignatureError, VerificationError):
        return "invalid"
    return "valid"


async def test_mastodon_vectors_through_the_verifier(here: Instance) -> None:
    """All twelve agree with Mastodon, with the key read from the stored actor and nothing fetched
    (remote.domain does not exist in the lab: a fetch would fail the valid cases)."""
    await store_vector_actor(here)
    verifier = RequestVerifier(here.context)
    results = {case["name"]: await verdict(verifier, case) for case in VECTORS["cases"]}
    assert results == {case["name"]: case["expect"] for case in VECTORS["cases"]}
    assert len(results) == 12


async def test_stored_key_claimed_by_an_actor_on_another_server_is_not_believed(here: Instance) -> None:
    async with here.context.sessions() as session:
        session.add(
            Account(
                username="mallory",
                domain="evil.test",
                uri="https://evil.test/users/mallory",
                inbox_url="https://evil.test/users/mallory/inbox",
                key_id=VECTORS["key_id"],
                public_key_pem=VECTORS["public_key_pem"],
                fetched_at=datetime.now(UTC),
            )
        )
        await session.commit()
    assert await RequestVerifier(here.context).known_key(VECTORS["key_id"]) is None


async def test_gone_actors_keys_are_not_used(here: Instance) -> None:
    await store_vector_actor(here)
    async with here.context.sessions() as session:
        await session.execute(
            update(Account).where(col(Account.uri) == VECTORS["actor_id"]).values(gone_at=datetime.now(UTC))
        )
        await session.commit()
    assert await RequestVerifier(here.context).known_key(VECTORS["key_id"]) is None


async def test_failed_key_fetch_is_not_repeated_for_a_minute(here: Instance, lab: Lab) -> None:
    peer = Peer(lab).host("remote.test")
    verifier = RequestVerifier(here.context)
    for _ in range(3):
        with pytest.raises(VerificationError, match="answered 404"):
            await verifier.fetch_key("http://remote.test/users/nobody#main-key")
    assert peer.fetches("http://remote.test/users/nobody") == 1


async def test_recently_fetched_key_is_not_refetched_on_failure(here: Instance, lab: Lab) -> None:
    peer = Peer(lab).host("remote.test")
    bob = peer.actor("http://remote.test/users/bob")
    verifier = RequestVerifier(here.context)
    key = await verifier.fetch_key(bob.key_id)
    assert key.owner == bob.uri
    forger = PeerActor(uri=bob.uri, key=peer.next_key(), key_id=bob.key_id, document={})
    body = b"{}"
    headers = sign_cavage(
        key=forger.key, key_id=bob.key_id, method="POST", url="http://a.test/inbox", body=body
    )
    signed = parse_signed_request(
        method="POST", path="/inbox", query="", headers=headers, body=body, now=datetime.now(UTC)
    )
    with pytest.raises(VerificationError, match="signature does not verify"):
        await verifier.verify(signed)
    assert peer.fetches(bob.uri) == 1


async def test_stale_key_is_refetched_once_when_it_fails(here: Instance, lab: Lab) -> None:
    peer = Peer(lab).host("remote.test")
    bob = peer.actor("http://remote.test/users/bob")
    verifier = RequestVerifier(here.context)
    await verifier.fetch_key(bob.key_id)
    async with here.context.sessions() as session:
        await session.execute(
            update(Account)
            .where(col(Account.uri) == bob.uri)
            .values(fetched_at=datetime.now(UTC) - timedelta(minutes=6))
        )
        await session.commit()
    verifier = RequestVerifier(here.context)
    rotated = peer.rotate_key(bob)
    body = b"{}"
    headers = sign_cavage(
        key=rotated.key, key_id=bob.key_id, method="POST", url="http://a.test/inbox", body=body
    )
    signed = parse_signed_request(
        method="POST", path="/inbox", query="", headers=headers, body=body, now=datetime.now(UTC)
    )
    key = await verifier.verify(signed)
    assert key.public_key_pem == rotated.document["publicKey"]["publicKeyPem"]
    assert peer.fetches(bob.uri) == 2
