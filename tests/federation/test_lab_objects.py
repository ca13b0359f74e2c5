"""A local post at its id: the Note, its Create at `…/activity`, its replies, 410 once deleted."""

from __future__ import annotations

import pytest

from app.activitypub.addressing import AS_PUBLIC
from app.services.posting import PostingService
from tests.federation.delivery_helpers import local_account
from tests.lab import Instance, Lab

AS2 = "application/activity+json"
LD = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
async def home(lab: Lab) -> Instance:
    return await lab.instance("a.test", embedded_worker=False)


@pytest.mark.parametrize("accept", [AS2, LD, "application/json"])
async def test_note_and_create_dereference_at_their_ids(home: Instance, accept: str) -> None:
    alice = await local_account(home, "alice")
    carl = await local_account(home, "carl")
    post = await PostingService(home.context).create(
        alice, "Hi @carl, see #this", spoiler_text="spoiler", language="en"
    )

    note = await home.client.get(post.uri, headers={"Accept": accept})
    assert note.status_code == 200
    assert note.headers["content-type"].startswith(AS2)
    assert "Accept" in note.headers["vary"]
    document = note.json()
    assert document["@context"][0] == "https://www.w3.org/ns/activitystreams"
    assert document["id"] == post.uri
    assert document["type"] == "Note"
    assert document["attributedTo"] == alice.uri
    assert document["url"] == post.url
    assert (document["summary"], document["sensitive"]) == ("spoiler", True)
    assert document["contentMap"] == {"en": post.content_html}
    assert document["to"] == [AS_PUBLIC] and document["cc"] == [alice.followers_url, carl.uri]
    assert {"type": "Mention", "href": carl.uri, "name": "@carl"} in document["tag"]
    assert document["replies"]["id"] == f"{post.uri}/replies"
    assert document["conversation"] == post.conversation_uri

    create = (await home.client.get(f"{post.uri}/activity", headers={"Accept": accept})).json()
    assert (create["type"], create["id"], create["actor"]) == ("Create", f"{post.uri}/activity", alice.uri)
    assert create["object"] == {key: value for key, value in document.items() if key != "@context"}


async def test_browsers_are_sent_to_the_web_page(home: Instance) -> None:
    alice = await local_account(home, "alice")
    post = await PostingService(home.context).create(alice, "Hello")
    page = await home.client.get(post.uri, headers={"Accept": BROWSER})
    assert page.status_code == 302 and page.headers["location"] == post.url


async def test_a_deleted_post_is_gone(home: Instance) -> None:
    alice = await local_account(home, "alice")
    posting = PostingService(home.context)
    post = await posting.create(alice, "Soon gone")
    await posting.delete(alice, post.id)
    for url in (post.uri, f"{post.uri}/activity"):
        answer = await home.client.get(url, headers={"Accept": AS2})
        assert answer.status_code == 410
        assert answer.json()["type"] == "Tombstone" and answer.json()["id"] == post.uri
    assert (await home.client.get(post.uri, headers={"Accept": BROWSER})).status_code == 410


async def test_unknown_and_mismatched_ids_are_not_found(home: Instance) -> None:
    alice = await local_account(home, "alice")
    await local_account(home, "carl")
    post = await PostingService(home.context).create(alice, "Mine")
    for path in (
        f"/users/carl/statuses/{post.id}",
        "/users/alice/statuses/12345",
        "/users/alice/statuses/not-a-number",
        f"/users/nobody/statuses/{post.id}",
    ):
        assert (await home.client.get(path, headers={"Accept": AS2})).status_code == 404, path


async def test_private_posts_are_not_served_unsigned(home: Instance) -> None:
    alice = await local_account(home, "alice")
    posting = PostingService(home.context)
    for visibility in ("followers", "direct"):
        post = await posting.create(alice, "secret", visibility=visibility)
        assert (await home.client.get(post.uri, headers={"Accept": AS2})).status_code == 404
        assert (await home.client.get(f"{post.uri}/activity", headers={"Accept": AS2})).status_code == 404
    unlisted = await posting.create(alice, "quiet", visibility="unlisted")
    assert (await home.client.get(unlisted.uri, headers={"Accept": AS2})).status_code == 200


async def test_replies_collection_and_boosts(home: Instance) -> None:
    alice = await local_account(home, "alice")
    carl = await local_account(home, "carl")
    posting = PostingService(home.context)
    post = await posting.create(alice, "Thread")
    reply = await posting.create(carl, "A reply", in_reply_to=post.uri)
    await posting.create(carl, "A private reply", in_reply_to=post.uri, visibility="followers")

    collection = (await home.client.get(f"{post.uri}/replies", headers={"Accept": AS2})).json()
    assert collection["type"] == "Collection" and collection["first"]["items"] == [reply.uri]
    page = (await home.client.get(f"{post.uri}/replies?page=true", headers={"Accept": AS2})).json()
    assert page["type"] == "CollectionPage" and page["items"] == [reply.uri]

    boost = await posting.boost(carl, post.uri)
    announce = await home.client.get(boost.uri, headers={"Accept": AS2})
    assert announce.status_code == 200
    assert (announce.json()["type"], announce.json()["object"]) == ("Announce", post.uri)
    status_url = boost.uri.removesuffix("/activity")
    moved = await home.client.get(status_url, headers={"Accept": AS2})
    assert moved.status_code == 302 and moved.headers["location"] == boost.uri
