"""Property-based fuzzing (hypothesis) of the signature header parser and the inbox dispatcher.

The HTML sanitiser has its own properties in tests/services/test_html_sanitizer.py. Example
counts are bounded so the suite stays fast; run with HYPOTHESIS_PROFILE-style overrides
(`--hypothesis-seed`, larger max_examples) to search longer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.activitypub.signatures import SignatureError, parse_signed_request
from app.models import InboxItem, JobState
from tests.federation.inbox_peer import (
    Peer,
    PeerActor,
    local_account,
    process_inbox,
    rows,
    sign_cavage,
    throwaway_key,
)
from tests.lab import Instance, Lab

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
KEY = throwaway_key(1)
KEY_ID = "http://remote.test/users/bob#main-key"
URL = "http://a.test/inbox"
BODY = b'{"type":"Follow","actor":"http://remote.test/users/bob","object":"http://a.test/users/alice"}'

header_text = st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=300)


def signed_headers() -> dict[str, str]:
    return sign_cavage(key=KEY, key_id=KEY_ID, method="POST", url=URL, body=BODY, date=NOW)


def parse(headers: dict[str, str], body: bytes = BODY) -> Any:
    return parse_signed_request(
        method="POST",
        path="/inbox",
        query="",
        headers=headers,
        body=body,
        now=NOW,
        host="a.test",
        scheme="http",
    )


def test_the_unmutated_request_verifies() -> None:
    assert parse(signed_headers()).verify(KEY.public_key())


@settings(max_examples=400, deadline=None)
@given(signature=header_text, signature_input=st.none() | header_text, date=header_text, digest=header_text)
def test_arbitrary_headers_are_refused_cleanly(
    signature: str, signature_input: str | None, date: str, digest: str
) -> None:
    headers = {"Signature": signature, "Date": date, "Digest": digest, "Host": "a.test"}
    if signature_input is not None:
        headers["Signature-Input"] = signature_input
    try:
        parsed = parse(headers)
    except SignatureError:
        return
    assert not parsed.verify(KEY.public_key())


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(["Signature", "Date", "Digest", "Host", "Content-Type"]),
    position=st.integers(min_value=0, max_value=10_000),
    replacement=st.characters(codec="latin-1", exclude_characters="\r\n"),
    body_flip=st.none() | st.integers(min_value=0, max_value=len(BODY) - 1),
)
def test_mutated_signatures_are_never_accepted(
    name: str, position: int, replacement: str, body_flip: int | None
) -> None:
    headers = signed_headers()
    value = headers[name]
    index = position % max(len(value), 1)
    mutated = value[:index] + replacement + value[index + 1 :]
    body = BODY
    if body_flip is not None:
        body = BODY[:body_flip] + bytes([BODY[body_flip] ^ 0x01]) + BODY[body_flip + 1 :]
    if mutated == value and body == BODY:
        return
    headers[name] = mutated
    try:
        parsed = parse(headers, body)
    except SignatureError:
        return
    if not parsed.verify(KEY.public_key()):
        return
    # Verifying after a mutation is fine only where nothing signed changed: another keyId (whose
    # own key would then be fetched and fail), a header's case, or the Host (we sign for ours).
    # The signature bytes themselves and the body never tolerate a change.
    assert body == BODY
    start = value.find('signature="') + len('signature="')
    inside_signature = name == "Signature" and start <= index < value.find('"', start)
    assert not inside_signature or mutated.lower() == value.lower()
    assert name in ("Signature", "Host") or mutated.lower() == value.lower(), (name, mutated)


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "http://remote.test/users/bob",
            "http://a.test/users/alice",
            "http://evil.test/x",
            "https://www.w3.org/ns/activitystreams#Public",
        ]
    )
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
ACTIVITY_TYPES = [
    "Create",
    "Update",
    "Delete",
    "Follow",
    "Accept",
    "Reject",
    "Undo",
    "Announce",
    "Like",
    "Block",
    "Flag",
    "Move",
    "Add",
    "Remove",
    "EmojiReact",
    "Question",
    "Note",
    "Nonsense",
    "",
]


@st.composite
def activities(draw: st.DrawFn) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "type": draw(st.sampled_from(ACTIVITY_TYPES) | json_value),
        "actor": draw(
            st.sampled_from(["http://remote.test/users/bob", "http://evil.test/users/mallory"]) | json_value
        ),
        "object": draw(
            json_value
            | st.fixed_dictionaries(
                {
                    "type": st.sampled_from(ACTIVITY_TYPES) | json_value,
                    "id": json_value,
                    "attributedTo": json_value,
                },
                optional={
                    "content": json_value,
                    "to": json_value,
                    "object": json_value,
                    "inReplyTo": json_value,
                },
            )
        ),
    }
    for key in ["id", "to", "cc", "target", "published"]:
        if draw(st.booleans()):
            activity[key] = draw(json_value)
    return activity


@pytest.fixture
async def here(lab: Lab) -> Instance:
    instance = await lab.instance("a.test", embedded_worker=False)
    await local_account(instance, "alice")
    return instance


@pytest.fixture
def peer(lab: Lab) -> Peer:
    return Peer(lab).host("remote.test")


@pytest.fixture
def bob(peer: Peer) -> PeerActor:
    return peer.actor("http://remote.test/users/bob")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(activity=activities())
async def test_inbox_dispatcher_never_fails_on_generated_activities(
    here: Instance, peer: Peer, bob: PeerActor, activity: dict[str, Any]
) -> None:
    response = await peer.deliver(here, bob, json.dumps(activity).encode())
    assert response.status_code in (202, 400, 401, 403, 413), response.text
    await process_inbox(here)
    for item in await rows(here, InboxItem):
        # Done (applied or ignored with a reason), never stuck on an unhandled exception.
        assert item.state in (JobState.DONE, JobState.FAILED), (item.state, item.last_error)


@pytest.mark.parametrize("name", ["Digest", "Signature"])
async def test_non_ascii_in_signature_headers_is_4xx_not_500(
    here: Instance, bob: PeerActor, name: str
) -> None:
    """What the fuzzer found: base64 of latin-1 header bytes raised ValueError, not SignatureError."""
    headers: dict[str, Any] = sign_cavage(key=bob.key, key_id=bob.key_id, method="POST", url=URL, body=BODY)
    value = headers[name]
    headers[name] = (value[: len(value) - 4] + "\x80" + value[len(value) - 3 :]).encode("latin-1")
    response = await here.client.post("/inbox", content=BODY, headers=headers)
    assert 400 <= response.status_code < 500
