"""The inbox refuses an activity addressed to more recipients than MAX_RECIPIENTS_PER_ACTIVITY, before
anything is stored; one within the limit (counted over to, cc, bto, bcc, audience of the activity
and of the object it carries, each address once) is accepted as usual."""

from __future__ import annotations

from app.activitypub.parsers import recipient_count
from tests.federation.inbox_peer import (
    PUBLIC,
    Peer,
    create,
    inbox_items,
    local_account,
    note,
)
from tests.lab import Lab

LIMIT = 5


def mentions(count: int) -> list[str]:
    return [f"http://elsewhere.test/users/person{number}" for number in range(count)]


async def test_an_over_addressed_activity_is_refused_before_it_is_stored(lab: Lab) -> None:
    here = await lab.instance("a.test", embedded_worker=False, max_recipients_per_activity=LIMIT)
    await local_account(here, "alice")
    peer = Peer(lab).host("remote.test")
    bob = peer.actor("http://remote.test/users/bob")

    # Public, the followers, and four mentions in bcc: six recipients.
    crowded = note(bob, 1, bcc=mentions(4))
    refused = await peer.deliver(here, bob, create(bob, crowded))
    assert refused.status_code == 422, refused.text
    assert refused.json() == {"error": f"the activity is addressed to more than {LIMIT} recipients"}
    assert await inbox_items(here) == []

    # The activity repeats its object's addressing; each address counts once: five recipients.
    fitting = note(bob, 2, to=[PUBLIC, *mentions(2)], cc=[bob.followers, *mentions(2)])
    accepted = await peer.deliver(here, bob, create(bob, fitting))
    assert accepted.status_code == 202, accepted.text
    assert [item.activity_uri for item in await inbox_items(here)] == [f"{fitting['id']}/activity"]


async def test_the_audience_field_counts_too(lab: Lab) -> None:
    here = await lab.instance("a.test", embedded_worker=False, max_recipients_per_activity=LIMIT)
    await local_account(here, "alice")
    peer = Peer(lab).host("remote.test")
    bob = peer.actor("http://remote.test/users/bob")
    like = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{bob.uri}#likes/1",
        "type": "Like",
        "actor": bob.uri,
        "object": "http://a.test/users/alice/statuses/1",
        "audience": mentions(LIMIT + 1),
    }
    refused = await peer.deliver(here, bob, like)
    assert refused.status_code == 422


def test_the_count_reads_every_addressing_field_of_activity_and_object() -> None:
    document = {
        "to": "https://www.w3.org/ns/activitystreams#Public",
        "cc": [{"id": "http://x.test/a"}, "http://x.test/b", 7, None],
        "bto": ["http://x.test/c"],
        "object": {
            "to": ["http://x.test/a"],
            "bcc": "http://x.test/d",
            "audience": [{"href": "http://x.test/e"}],
        },
    }
    assert recipient_count(document) == 6
    assert recipient_count({"object": "http://x.test/note"}) == 0
    # Beyond the 1000 addresses `addresses` keeps, every one is still counted.
    assert recipient_count({"cc": mentions(2500)}) == 2500
