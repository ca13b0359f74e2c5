"""The inbox's answers: every refusal with its status and reason, and what is stored before the 202.

The deliveries come from `Peer`, which signs with `cryptography` alone, not with Herold's signer.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.activitypub.signatures import sign_request
from app.context import build_context
from app.federation.worker import Worker, build_worker
from app.models import Account, DomainBlock, Follow, InboxItem, JobState
from app.queue_names import INBOX_QUEUE
from tests.federation.inbox_peer import (
    MASTODON_CONTEXT,
    Peer,
    PeerActor,
    activity,
    inbox_items,
    local_account,
    process_inbox,
    rows,
    sign_cavage,
)
from tests.lab import Instance, Lab


def follow(actor: PeerActor, number: int = 1) -> dict[str, object]:
    return activity(actor, "Follow", "http://a.test/users/alice", f"follows/{number}")


async def test_signed_follow_is_stored_before_the_202_and_processed_later(
    here: Instance, peer: Peer, bob: PeerActor
) -> None:
    response = await peer.deliver(here, bob, follow(bob))
    assert response.status_code == 202, response.text
    [item] = await inbox_items(here)
    assert item.activity_uri == "http://remote.test/users/bob#follows/1"
    assert item.activity_type == "Follow"
    assert item.signer_uri == bob.uri
    assert item.state == JobState.QUEUED
    assert item.recipient_account_id is None
    assert item.payload["object"] == "http://a.test/users/alice"
    # The key was fetched once and stored with the actor.
    [stored] = await rows(here, Account, Account.uri == bob.uri)
    assert stored.key_id == bob.key_id and "BEGIN PUBLIC KEY" in stored.public_key_pem
    assert peer.fetches(bob.uri) == 1

    await process_inbox(here)
    [item] = await inbox_items(here)
    assert item.state == JobState.DONE and item.last_error is None
    assert len(await rows(here, Follow)) == 1


async def test_personal_inbox_records_the_recipient(here: Instance, peer: Peer, bob: PeerActor) -> None:
    response = await peer.deliver(here, bob, follow(bob), path="/users/alice/inbox")
    assert response.status_code == 202, response.text
    [item] = await inbox_items(here)
    [alice] = await rows(here, Account, Account.username == "alice")
    assert item.recipient_account_id == alice.id

    missing = await peer.deliver(here, bob, follow(bob, 2), path="/users/nobody/inbox")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no account named 'nobody' here"}


async def test_redelivery_is_stored_and_processed_once(here: Instance, peer: Peer, bob: PeerActor) -> None:
    for _ in range(3):
        assert (await peer.deliver(here, bob, follow(bob))).status_code == 202
    assert len(await inbox_items(here)) == 1
    await process_inbox(here)
    assert (await peer.deliver(here, bob, follow(bob))).status_code == 202
    await process_inbox(here)
    assert len(await inbox_items(here)) == 1
    assert len(await rows(here, Follow)) == 1


async def test_unknown_types_are_accepted_and_dropped(here: Instance, peer: Peer, bob: PeerActor) -> None:
    response = await peer.deliver(
        here, bob, activity(bob, "Listen", "http://remote.test/tracks/1", "listens/1")
    )
    assert response.status_code == 202
    assert await inbox_items(here) == []


async def test_rfc9421_signature_is_accepted(here: Instance, peer: Peer, bob: PeerActor) -> None:
    response = await peer.deliver(here, bob, follow(bob), rfc9421=True)
    assert response.status_code == 202, response.text
    assert len(await inbox_items(here)) == 1


async def test_signature_over_the_path_without_query_is_accepted(
    here: Instance, peer: Peer, bob: PeerActor
) -> None:
    body = json.dumps(follow(bob)).encode()
    headers = sign_cavage(key=bob.key, key_id=bob.key_id, method="POST", url="http://a.test/inbox", body=body)
    response = await here.client.post("/inbox?via=relay", content=body, headers=headers)
    assert response.status_code == 202, response.text


async def test_hs2019_with_created_is_accepted(here: Instance, peer: Peer, bob: PeerActor) -> None:
    import base64
    import hashlib

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    body = json.dumps(follow(bob)).encode()
    created = int(datetime.now(UTC).timestamp())
    digest = "SHA-512=" + base64.b64encode(hashlib.sha512(body).digest()).decode()
    signing = f"(request-target): post /inbox\nhost: a.test\n(created): {created}\ndigest: {digest}"
    signature = base64.b64encode(bob.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    headers = {
        "Digest": digest,
        "Content-Type": "application/activity+json",
        "Signature": (
            f'keyId="{bob.key_id}",algorithm="hs2019",created={created},'
            f'headers="(request-target) host (created) digest",signature="{signature}"'
        ),
    }
    response = await here.client.post("/inbox", content=body, headers=headers)
    assert response.status_code == 202, response.text


# ------------------------------------------------------------------------------------------------
# Refusals


async def test_unsigned_request_is_401(here: Instance) -> None:
    response = await here.client.post(
        "/inbox", content=b"{}", headers={"Content-Type": "application/activity+json"}
    )
    assert response.status_code == 401
    assert response.json() == {"error": "request is not signed (no Signature or Signature-Input header)"}


async def test_an_inbox_answers_with_the_app_s_headers_and_takes_only_post(here: Instance) -> None:
    # Deliveries skip FastAPI's routing (InboxEntrance), not the app's own layers.
    refused = await here.client.post(
        "/users/alice/inbox", content=b"{}", headers={"Content-Type": "application/activity+json"}
    )
    assert refused.status_code in (401, 404)
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert refused.headers["x-request-id"]
    for path in ("/inbox", "/users/alice/inbox"):
        read = await here.client.get(path)
        assert read.status_code == 405 and read.headers["allow"] == "POST"
        assert read.json() == {"error": "an inbox only takes POST"}


BAD_SIGNATURES = {
    "body": "Digest does not match the body",
    "digest-unsigned": "signature does not cover digest",
    "host-unsigned": "signature does not cover host",
    "old-date": "Date is outside the accepted window (older than 3900 seconds)",
    "future-date": "Date is outside the accepted window (more than 1 hour in the future)",
    "garbage": "Signature header is malformed at character 1",
    "algorithm": "unsupported algorithm hmac-sha256",
}


async def test_bad_signatures_are_401_with_the_reason(here: Instance, peer: Peer, bob: PeerActor) -> None:
    # One instance for all the cases: nothing of a refused request is kept, so they cannot interfere.
    for tamper, reason in BAD_SIGNATURES.items():
        body = json.dumps(follow(bob)).encode()
        signed: tuple[str, ...] = ("(request-target)", "host", "date", "digest", "content-type")
        date = None
        if tamper == "digest-unsigned":
            signed = ("(request-target)", "host", "date")
        elif tamper == "host-unsigned":
            signed = ("(request-target)", "date", "digest")
        elif tamper == "old-date":
            date = datetime.now(UTC) - timedelta(hours=2)
        elif tamper == "future-date":
            date = datetime.now(UTC) + timedelta(hours=2)
        headers = sign_cavage(
            key=bob.key,
            key_id=bob.key_id,
            method="POST",
            url="http://a.test/inbox",
            body=body,
            date=date,
            signed=signed,
        )
        if tamper == "body":
            body = body.replace(b"follows/1", b"follows/2")
        elif tamper == "garbage":
            headers["Signature"] = "!!!"
        elif tamper == "algorithm":
            headers["Signature"] = headers["Signature"].replace("rsa-sha256", "hmac-sha256")
        response = await here.client.post("/inbox", content=body, headers=headers)
        assert (tamper, response.status_code, response.json()) == (tamper, 401, {"error": reason})
    assert await inbox_items(here) == []


async def test_signature_by_another_key_is_401(here: Instance, peer: Peer, bob: PeerActor) -> None:
    forger = PeerActor(uri=bob.uri, key=peer.next_key(), key_id=bob.key_id, document=bob.document)
    response = await peer.deliver(here, forger, follow(bob))
    assert response.status_code == 401
    assert response.json() == {"error": f"signature does not verify with the key {bob.key_id}"}


async def test_signature_for_another_server_is_401(here: Instance, peer: Peer, bob: PeerActor) -> None:
    body = json.dumps(follow(bob)).encode()
    headers = sign_cavage(
        key=bob.key, key_id=bob.key_id, method="POST", url="http://elsewhere.test/inbox", body=body
    )
    headers.pop("Host")
    response = await here.client.post("/inbox", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"].startswith("signature does not verify")


async def test_unreachable_key_is_401(here: Instance, peer: Peer) -> None:
    ghost = PeerActor(
        uri="http://remote.test/users/ghost",
        key=peer.next_key(),
        key_id="http://remote.test/users/ghost#main-key",
        document={},
    )
    response = await peer.deliver(here, ghost, follow(ghost))
    assert response.status_code == 401
    assert response.json() == {
        "error": "could not fetch the key http://remote.test/users/ghost#main-key: "
        "http://remote.test/users/ghost#main-key answered 404"
    }


async def test_key_whose_actor_does_not_list_it_is_401(here: Instance, peer: Peer) -> None:
    carol = peer.actor("http://remote.test/users/carol")
    claimed = PeerActor(
        uri=carol.uri, key=carol.key, key_id=f"{carol.uri}#other-key", document=carol.document
    )
    response = await peer.deliver(here, claimed, follow(claimed))
    assert response.status_code == 401
    assert response.json() == {"error": f"the actor {carol.uri} does not list the key {carol.uri}#other-key"}


async def test_body_over_a_megabyte_is_413_from_content_length(
    here: Instance, peer: Peer, bob: PeerActor
) -> None:
    body = b'{"type": "Create", "padding": "' + b"x" * 1_100_000 + b'"}'
    headers = sign_cavage(key=bob.key, key_id=bob.key_id, method="POST", url="http://a.test/inbox", body=body)
    response = await here.client.post("/inbox", content=body, headers=headers)
    assert response.status_code == 413
    assert response.json() == {"error": "body is larger than 1048576 bytes"}
    assert peer.fetches(bob.uri) == 0


async def test_body_over_a_megabyte_is_413_while_streaming(here: Instance) -> None:
    sent = 0

    async def chunks():  # type: ignore[no-untyped-def]
        nonlocal sent
        for _ in range(100):
            sent += 65536
            yield b"x" * 65536

    response = await here.client.post(
        "/inbox", content=chunks(), headers={"Content-Type": "application/activity+json"}
    )
    assert response.status_code == 413
    assert response.json() == {"error": "body is larger than 1048576 bytes"}


MALFORMED_BODIES = [
    (
        b"{not json",
        "body is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    ),
    (b"[1, 2]", "body is a JSON list, not an object"),
    (b'"Follow"', "body is a JSON str, not an object"),
    (b'{"type": "Follow", "object": "x"}', "the activity has no actor"),
    (b'{"actor": "http://remote.test/users/bob"}', "the activity has no type"),
    (
        b'{"type": "Note", "actor": "http://remote.test/users/bob", "content": "\\u0000"}',
        "body contains a NUL character",
    ),
    (
        b'{"type": "Note", "actor": "http://remote.test/users/bob", "x": ' + b"[" * 100 + b"]" * 100 + b"}",
        "body is JSON nested deeper than 64 levels",
    ),
    (
        b'{"a": "\xff"}',
        "body is not valid JSON: 'utf-8' codec can't decode byte 0xff in position 7: invalid start byte",
    ),
]


async def test_malformed_bodies_are_400(here: Instance, peer: Peer, bob: PeerActor) -> None:
    for body, reason in MALFORMED_BODIES:
        headers = sign_cavage(
            key=bob.key, key_id=bob.key_id, method="POST", url="http://a.test/inbox", body=body
        )
        response = await here.client.post("/inbox", content=body, headers=headers)
        assert (body[:40], response.status_code, response.json()) == (body[:40], 400, {"error": reason})


async def test_activity_id_on_another_server_is_400(here: Instance, peer: Peer, bob: PeerActor) -> None:
    forged = {**follow(bob), "id": "http://victim.test/users/x#follows/1"}
    response = await peer.deliver(here, bob, forged)
    assert response.status_code == 400
    assert response.json() == {
        "error": "the activity id http://victim.test/users/x#follows/1 is not on the actor's server"
    }


@pytest.mark.parametrize("blocked", ["remote.test", "test"])
async def test_blocked_domain_is_403_before_any_key_fetch(here: Instance, lab: Lab, blocked: str) -> None:
    peer = Peer(lab).host("media.remote.test:8443")
    spammer = peer.actor("http://media.remote.test:8443/users/spam")
    async with here.context.sessions() as session:
        session.add(DomainBlock(domain=blocked, severity="suspend"))
        await session.commit()
    response = await peer.deliver(here, spammer, follow(spammer))
    assert response.status_code == 403
    assert response.json() == {"error": "media.remote.test:8443 is blocked by this server"}
    assert peer.requests == []


async def test_silenced_domain_is_not_refused(here: Instance, peer: Peer, bob: PeerActor) -> None:
    async with here.context.sessions() as session:
        session.add(DomainBlock(domain="remote.test", severity="silence"))
        await session.commit()
    assert (await peer.deliver(here, bob, follow(bob))).status_code == 202


async def test_delete_of_an_unknown_actor_is_202_without_fetching(here: Instance, peer: Peer) -> None:
    gone = PeerActor(
        uri="http://remote.test/users/gone",
        key=peer.next_key(),
        key_id="http://remote.test/users/gone#main-key",
        document={},
    )
    peer.documents[gone.uri] = 410
    delete = {
        "@context": MASTODON_CONTEXT,
        "id": f"{gone.uri}#delete",
        "type": "Delete",
        "actor": gone.uri,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "object": gone.uri,
    }
    response = await peer.deliver(here, gone, delete)
    assert response.status_code == 202
    assert peer.requests == []
    assert await inbox_items(here) == []


# ------------------------------------------------------------------------------------------------
# Keys: separate key documents, authorized fetch, single flight, rotation


async def test_key_document_without_fragment_as_gotosocial_serves_it(here: Instance, peer: Peer) -> None:
    gts = peer.actor("http://remote.test/users/gts", key_document=True)
    assert gts.key_id == "http://remote.test/users/gts/main-key"
    response = await peer.deliver(here, gts, follow(gts))
    assert response.status_code == 202, response.text
    [stored] = await rows(here, Account, Account.uri == gts.uri)
    assert stored.key_id == gts.key_id


async def test_key_document_claiming_a_foreign_owner_is_401(here: Instance, lab: Lab, peer: Peer) -> None:
    victim = Peer(lab).host("victim.test").actor("http://victim.test/users/v")
    key_id = "http://remote.test/keys/1"
    peer.documents[key_id] = {
        "id": key_id,
        "owner": victim.uri,
        "publicKeyPem": victim.document["publicKey"]["publicKeyPem"],
    }
    signer = PeerActor(uri=victim.uri, key=victim.key, key_id=key_id, document={})
    response = await peer.deliver(here, signer, follow(signer))
    assert response.status_code == 401
    assert response.json() == {"error": f"the key {key_id} claims an owner on another server"}


async def test_authorized_fetch_server_gets_a_signed_key_fetch(
    here: Instance, peer: Peer, bob: PeerActor
) -> None:
    peer.authorized_fetch.add("remote.test")
    response = await peer.deliver(here, bob, follow(bob))
    assert response.status_code == 202, response.text
    gets = [headers for method, url, headers in peer.requests if method == "GET" and url == bob.uri]
    assert len(gets) == 2
    assert "signature" not in gets[0]
    assert 'keyId="http://a.test/actor#main-key"' in gets[1]["signature"]


async def test_concurrent_deliveries_share_one_key_fetch(here: Instance, peer: Peer, bob: PeerActor) -> None:
    responses = await asyncio.gather(*(peer.deliver(here, bob, follow(bob, number)) for number in range(20)))
    assert [response.status_code for response in responses] == [202] * 20
    assert peer.fetches(bob.uri) == 1
    assert len(await inbox_items(here)) == 20


async def test_rotated_key_is_refetched_once_then_not_again_for_five_minutes(
    here: Instance, peer: Peer, bob: PeerActor
) -> None:
    assert (await peer.deliver(here, bob, follow(bob, 1))).status_code == 202
    # The stored key is old enough to be refetched when a signature does not verify with it.
    async with here.context.sessions() as session:
        stored = (await rows(here, Account, Account.uri == bob.uri))[0]
        stored.fetched_at = datetime.now(UTC) - timedelta(hours=1)
        session.add(stored)
        await session.commit()
    # Forget what the receiver and its verifier remember, as after a restart.
    here.app.state.inbox_receiver = here.app.state.request_verifier = None
    rotated = peer.rotate_key(bob)
    assert (await peer.deliver(here, rotated, follow(rotated, 2))).status_code == 202
    assert peer.fetches(bob.uri) == 2

    # A forger now gets one refusal per request and no further fetches.
    forger = PeerActor(uri=bob.uri, key=peer.next_key(), key_id=bob.key_id, document={})
    for number in range(3, 6):
        response = await peer.deliver(here, forger, follow(forger, number))
        assert response.status_code == 401
    assert peer.fetches(bob.uri) == 2


async def test_two_servers_fetching_each_others_keys_do_not_wait_on_each_other(lab: Lab) -> None:
    """a and b deliver to each other at once, neither knowing the other's key; each answers the
    other's key fetch from its own database, so both deliveries complete."""
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    bea = await local_account(b, "bea")

    async def deliver(
        sender: Instance, actor: Account, receiver: Instance, target: Account
    ) -> httpx.Response:
        body = json.dumps(
            {
                "@context": MASTODON_CONTEXT,
                "id": f"{actor.uri}#follows/1",
                "type": "Follow",
                "actor": actor.uri,
                "object": target.uri,
            }
        ).encode()
        headers = sign_request(
            method="POST",
            url=f"{receiver.base_url}/inbox",
            body=body,
            key_id=actor.key_id,
            private_key=sender.context.keys.private_key(actor.private_key_pem or ""),
        )
        return await receiver.client.post("/inbox", content=body, headers=headers)

    async with asyncio.timeout(20):
        to_b, to_a = await asyncio.gather(deliver(a, alice, b, bea), deliver(b, bea, a, alice))
    assert (to_b.status_code, to_a.status_code) == (202, 202)


# ------------------------------------------------------------------------------------------------
# An actor that is not the signer


async def test_activity_relayed_by_another_signer_is_taken_from_its_origin(
    here: Instance, lab: Lab, peer: Peer, bob: PeerActor
) -> None:
    relay = Peer(lab).host("relay.test").actor("http://relay.test/actor", actor_type="Application")
    original = follow(bob, 7)
    peer.serve(original)
    response = await peer.deliver(here, relay, {**original, "object": "http://a.test/users/alice"})
    assert response.status_code == 202, response.text
    [item] = await inbox_items(here)
    assert item.signer_uri == bob.uri
    assert item.payload == original


async def test_activity_of_another_actor_that_its_origin_does_not_serve_is_401(
    here: Instance, lab: Lab, peer: Peer, bob: PeerActor
) -> None:
    mallory = Peer(lab).host("evil.test").actor("http://evil.test/users/mallory")
    response = await peer.deliver(here, mallory, follow(bob, 8))
    assert response.status_code == 401
    assert response.json() == {"error": f"the activity's actor {bob.uri} is not the signer {mallory.uri}"}
    assert await inbox_items(here) == []


async def test_item_is_marked_done_with_the_reason_when_ignored(
    here: Instance, peer: Peer, bob: PeerActor
) -> None:
    stray = activity(bob, "Follow", "http://a.test/users/nobody", "follows/9")
    assert (await peer.deliver(here, bob, stray)).status_code == 202
    await process_inbox(here)
    [item] = await rows(here, InboxItem)
    assert item.state == JobState.DONE
    assert item.attempts == 0
    assert item.last_error == "http://a.test/users/nobody is not an account of this server"


async def test_an_accepted_activity_survives_a_restart(here: Instance, peer: Peer, bob: PeerActor) -> None:
    """Answered 202 and never processed (the process died): a new process on the same database
    finds the item and processes it."""
    assert (await peer.deliver(here, bob, follow(bob))).status_code == 202
    restarted = build_context(here.settings)
    try:
        worker = Worker(
            restarted, [queue for queue in build_worker(restarted).queues if queue.name == INBOX_QUEUE]
        )
        async with asyncio.timeout(30):
            await worker.run_until_idle()
    finally:
        await restarted.aclose()
    [item] = await inbox_items(here)
    assert item.state == JobState.DONE
    assert len(await rows(here, Follow)) == 1
