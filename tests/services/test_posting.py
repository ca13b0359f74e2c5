"""The posting service: what a post becomes, who it is addressed and delivered to, and every action on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from app.activitypub.addressing import AS_PUBLIC
from app.models import (
    Account,
    Favourite,
    Follow,
    FollowState,
    Mention,
    Pin,
    Post,
    PostEdit,
    Tag,
    TimelineEntry,
    Visibility,
)
from app.services.posting import PostingError, PostingService, PostNotFound, visible_length
from tests.federation.delivery_helpers import (
    local_account,
    outbox,
    remote_follower,
    serving_peer,
)
from tests.federation.delivery_peer import Peer
from tests.lab import Instance, Lab


@pytest.fixture
async def peer(lab: Lab) -> AsyncIterator[Peer]:
    async with serving_peer(lab, "one.test", "two.test") as peer:
        yield peer


@pytest.fixture
async def home(lab: Lab) -> Instance:
    return await lab.instance("a.test", embedded_worker=False)


async def timeline_of(instance: Instance, account: Account) -> list[int]:
    async with instance.context.sessions() as session:
        rows = await session.scalars(
            select(TimelineEntry.post_id).where(TimelineEntry.account_id == account.id)
        )
        return list(rows.all())


def notes_bob(peer: Peer) -> dict[str, object]:
    """bob's actor document as notes.test serves it, with the peer's key."""
    return {
        "id": "http://notes.test/users/bob",
        "type": "Person",
        "preferredUsername": "bob",
        "inbox": "http://notes.test/users/bob/inbox",
        "publicKey": {"id": "http://notes.test/users/bob#main-key", "publicKeyPem": peer.public_pem()},
    }


def test_length_counts_links_as_23_and_remote_mentions_without_their_domain() -> None:
    assert visible_length("see https://example.org/" + "a" * 100) == len("see ") + 23
    assert visible_length("hi @bob@very-long-domain.example") == len("hi @bob")
    assert visible_length("hi @bob") == len("hi @bob")


async def test_a_public_post_with_mentions_tags_and_links(home: Instance, peer: Peer) -> None:
    alice = await local_account(home, "alice")
    carl = await local_account(home, "carl")
    bob = peer.add_account("bob", "one.test")
    await remote_follower(home, alice, peer, peer.add_account("ann", "two.test"))
    posting = PostingService(home.context)

    post = await posting.create(
        alice,
        "Hi @bob@one.test and @carl! #Herold #herold https://example.org/x @nobody@one.test",
        language="en",
    )

    assert post.uri == f"http://a.test/users/alice/statuses/{post.id}"
    assert post.url == f"http://a.test/@alice/{post.id}"
    assert post.visibility == Visibility.PUBLIC
    assert post.to == [AS_PUBLIC]
    assert post.cc == [alice.followers_url, bob.uri, carl.uri]
    assert '<a href="http://one.test/@bob" class="u-url mention">@<span>bob</span></a>' in post.content_html
    assert '<a href="http://a.test/@carl" class="u-url mention">@<span>carl</span></a>' in post.content_html
    assert "@nobody@one.test" in post.content_html  # unknown: stays text
    assert post.content_html.count('class="mention hashtag"') == 2
    assert post.conversation_uri and post.conversation_uri.startswith("tag:a.test,")

    [(activity, inboxes)] = await outbox(home)
    assert inboxes == ["http://one.test/inbox", "http://two.test/inbox"]
    note = activity["object"]
    assert note["contentMap"] == {"en": post.content_html}
    assert note["tag"] == [
        {"type": "Mention", "href": bob.uri, "name": "@bob@one.test"},
        {"type": "Mention", "href": carl.uri, "name": "@carl"},
        {"type": "Hashtag", "href": "http://a.test/tags/herold", "name": "#herold"},
    ]
    assert note["replies"]["id"] == f"{post.uri}/replies"
    async with home.context.sessions() as session:
        assert (await session.scalars(select(Tag.name))).all() == ["herold"]
        assert len((await session.scalars(select(Mention))).all()) == 2
        stored = await session.get(Account, alice.id)
        assert stored is not None and stored.posts_count == 1 and stored.last_post_at is not None


@pytest.mark.parametrize(
    ("visibility", "to", "cc", "to_followers"),
    [
        ("public", ["public"], ["followers", "bob"], True),
        ("unlisted", ["followers"], ["public", "bob"], True),
        ("followers", ["followers"], ["bob"], True),
        ("direct", ["bob"], [], False),
    ],
)
async def test_addressing_follows_mastodon_for_each_visibility(
    home: Instance, peer: Peer, visibility: str, to: list[str], cc: list[str], to_followers: bool
) -> None:
    alice = await local_account(home, "alice")
    bob = peer.add_account("bob", "one.test", shared_inbox=False)
    await remote_follower(home, alice, peer, peer.add_account("ann", "two.test"))
    names = {"public": AS_PUBLIC, "followers": alice.followers_url, "bob": bob.uri}

    post = await PostingService(home.context).create(alice, "psst @bob@one.test", visibility=visibility)

    assert (post.to, post.cc) == ([names[item] for item in to], [names[item] for item in cc])
    [(activity, inboxes)] = await outbox(home)
    assert (activity["to"], activity["cc"]) == (post.to, post.cc)
    expected = ["http://one.test/users/bob/inbox"] + (["http://two.test/inbox"] if to_followers else [])
    assert inboxes == sorted(expected)


async def test_timeline_entries_for_the_author_and_local_followers_only(home: Instance) -> None:
    alice = await local_account(home, "alice")
    carl = await local_account(home, "carl")
    dora = await local_account(home, "dora")
    async with home.context.sessions() as session:
        session.add(Follow(follower_id=carl.id, followee_id=alice.id, state=FollowState.ACCEPTED))
        session.add(Follow(follower_id=dora.id, followee_id=alice.id, state=FollowState.PENDING))
        await session.commit()
    posting = PostingService(home.context)
    public = await posting.create(alice, "to everyone")
    direct = await posting.create(alice, "just for @dora", visibility="direct")

    assert await timeline_of(home, alice) == [public.id, direct.id]
    assert await timeline_of(home, carl) == [public.id]
    assert await timeline_of(home, dora) == [direct.id]
    # Nobody elsewhere to deliver to: the activities are stored without a single job.
    assert [inboxes for _activity, inboxes in await outbox(home)] == [[], []]


async def test_content_warning_marks_the_post_sensitive(home: Instance) -> None:
    alice = await local_account(home, "alice")
    post = await PostingService(home.context).create(alice, "spoilers", spoiler_text="film ending")
    assert (post.summary, post.sensitive) == ("film ending", True)


async def test_refusals_are_explained(home: Instance) -> None:
    alice = await local_account(home, "alice")
    posting = PostingService(home.context)
    with pytest.raises(PostingError, match="needs some text"):
        await posting.create(alice, "   ")
    with pytest.raises(PostingError, match="limit is 500"):
        await posting.create(alice, "x" * 501)
    with pytest.raises(PostingError, match="visibility must be one of"):
        await posting.create(alice, "hi", visibility="secret")
    with pytest.raises(PostingError, match="not a language code"):
        await posting.create(alice, "hi", language="english please")
    with pytest.raises(PostingError, match="no local account"):
        await posting.local_account("nobody")
    with pytest.raises(PostingError, match="no post"):
        await posting.create(alice, "hi", in_reply_to="12345")


async def test_a_reply_to_a_local_post_joins_its_thread_and_addresses_its_author(
    home: Instance, peer: Peer
) -> None:
    alice = await local_account(home, "alice")
    carl = await local_account(home, "carl")
    posting = PostingService(home.context)
    original = await posting.create(carl, "What do you think?")

    reply = await posting.create(alice, "I agree", in_reply_to=original.url)

    assert (reply.in_reply_to_uri, reply.in_reply_to_id, reply.in_reply_to_account_id) == (
        original.uri,
        original.id,
        carl.id,
    )
    assert reply.conversation_uri == original.conversation_uri
    assert carl.uri in reply.cc
    assert (await posting.find_post(original.id)).replies_count == 1  # type: ignore[union-attr]
    assert await posting.replies(original) == [reply.uri]


async def test_a_reply_to_a_remote_post_never_seen_reads_it_from_its_origin(
    home: Instance, peer: Peer, lab: Lab
) -> None:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    bob = peer.add_account("bob", "one.test", shared_inbox=False)
    note_uri = "http://notes.test/users/bob/statuses/1"
    notes = FastAPI()

    @notes.get("/users/bob/statuses/1")
    async def served_note() -> JSONResponse:
        return JSONResponse(
            {
                "id": note_uri,
                "type": "Note",
                "attributedTo": "http://notes.test/users/bob",
                "conversation": "tag:x",
            },
            media_type="application/activity+json",
        )

    @notes.get("/users/bob")
    async def served_actor() -> JSONResponse:
        return JSONResponse(notes_bob(peer), media_type="application/activity+json")

    lab.network.register("notes.test", notes)
    del bob
    alice = await local_account(home, "alice")
    reply = await PostingService(home.context).create(
        alice, "Replying", in_reply_to=note_uri, visibility="direct"
    )
    # Kept here now, as context for the reply, in nobody's home timeline.
    kept = await PostingService(home.context).find_post(note_uri)
    assert kept is not None and not kept.local and reply.in_reply_to_id == kept.id
    assert reply.in_reply_to_uri == note_uri and reply.in_reply_to_account_id == kept.account_id
    assert await timeline_of(home, alice) == [reply.id]
    assert reply.conversation_uri == "tag:x"
    assert reply.to == ["http://notes.test/users/bob"]
    [(_activity, inboxes)] = await outbox(home)
    assert inboxes == ["http://notes.test/users/bob/inbox"]


async def test_a_remote_post_whose_url_redirects_to_another_server_claiming_it_is_refused(
    home: Instance, peer: Peer, lab: Lab
) -> None:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, RedirectResponse

    note_uri = "http://notes.test/users/bob/statuses/1"
    notes = FastAPI()

    # notes.test's post URL redirects (an open redirect, say) to evil.test.
    @notes.get("/users/bob/statuses/1")
    async def moved() -> RedirectResponse:
        return RedirectResponse("http://evil.test/forged", status_code=302)

    # bob is real, so only the origin check stands between the forgery and a kept post.
    @notes.get("/users/bob")
    async def served_actor() -> JSONResponse:
        return JSONResponse(notes_bob(peer), media_type="application/activity+json")

    evil = FastAPI()

    @evil.get("/forged")
    async def forged() -> JSONResponse:
        return JSONResponse(
            {
                "id": note_uri,
                "type": "Note",
                "attributedTo": "http://notes.test/users/bob",
                "content": "<p>forged text</p>",
            },
            media_type="application/activity+json",
        )

    lab.network.register("notes.test", notes)
    lab.network.register("evil.test", evil)
    alice = await local_account(home, "alice")
    posting = PostingService(home.context)
    with pytest.raises(PostingError, match="on another server"):
        await posting.create(alice, "Replying", in_reply_to=note_uri)
    assert await posting.find_post(note_uri) is None


async def test_edit_keeps_history_and_sends_an_update_to_old_and_new_mentions(
    home: Instance, peer: Peer
) -> None:
    alice = await local_account(home, "alice")
    peer.add_account("bob", "one.test")
    peer.add_account("cat", "two.test")
    posting = PostingService(home.context)
    post = await posting.create(alice, "Hello @bob@one.test")

    edited = await posting.edit(alice, post.uri, "Hello @cat@two.test #edited", spoiler_text="cw")

    assert edited.edited_at is not None and edited.summary == "cw" and edited.sensitive
    assert "cat" in edited.content_html and "bob" not in edited.content_html
    async with home.context.sessions() as session:
        [previous] = (await session.scalars(select(PostEdit))).all()
    assert "bob" in previous.content_html and previous.summary is None
    _create, (update, inboxes) = await outbox(home)
    assert update["type"] == "Update"
    assert update["id"].startswith(f"{post.uri}#updates/")
    assert update["object"]["updated"] and update["object"]["summary"] == "cw"
    assert [tag["name"] for tag in update["object"]["tag"]] == ["@cat@two.test", "#edited"]
    assert inboxes == ["http://one.test/inbox", "http://two.test/inbox"]


async def test_delete_sends_a_tombstone_and_forgets_the_content(home: Instance, peer: Peer) -> None:
    alice = await local_account(home, "alice")
    carl = await local_account(home, "carl")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    posting = PostingService(home.context)
    post = await posting.create(alice, "Regrettable")
    boost = await posting.boost(carl, post.uri)
    await posting.pin(alice, post.id)

    deleted = await posting.delete(alice, post.url or "")

    assert deleted.deleted_at is not None and deleted.content_html == "" and deleted.content_source is None
    assert await posting.find_post(boost.id) is None
    assert await timeline_of(home, alice) == []
    async with home.context.sessions() as session:
        assert (await session.scalars(select(Pin))).all() == []
    delete, inboxes = (await outbox(home))[-1]
    assert delete == {
        "@context": delete["@context"],
        "id": f"{post.uri}#delete",
        "type": "Delete",
        "actor": alice.uri,
        "to": [AS_PUBLIC],
        "cc": [alice.followers_url],
        "object": {"id": post.uri, "type": "Tombstone", "atomUri": post.uri},
    }
    assert inboxes == ["http://one.test/inbox"]
    with pytest.raises(PostingError):
        await posting.delete(alice, post.id)
    with pytest.raises(PostingError):
        await posting.delete(carl, (await posting.create(alice, "mine")).id)


async def test_boost_and_unboost(home: Instance, peer: Peer) -> None:
    alice = await local_account(home, "alice")
    carl = await local_account(home, "carl")
    await remote_follower(home, carl, peer, peer.add_account("ann", "one.test"))
    posting = PostingService(home.context)
    post = await posting.create(alice, "Worth sharing")
    secret = await posting.create(alice, "Not for sharing", visibility="followers")

    boost = await posting.boost(carl, post.uri)
    assert await posting.boost(carl, post.uri) == boost  # once
    assert boost.uri == f"http://a.test/users/carl/statuses/{boost.id}/activity"
    assert boost.to == [AS_PUBLIC] and boost.cc == [carl.followers_url, alice.uri]
    assert (await posting.find_post(post.id)).reblogs_count == 1  # type: ignore[union-attr]
    assert boost.id in await timeline_of(home, carl)
    announce, inboxes = (await outbox(home))[-1]
    assert (announce["type"], announce["id"], announce["object"]) == ("Announce", boost.uri, post.uri)
    assert inboxes == ["http://one.test/inbox"]
    # carl does not follow alice: for him the post does not exist; alice may not boost it either.
    with pytest.raises(PostNotFound):
        await posting.boost(carl, secret.id)
    with pytest.raises(PostingError, match="only public and unlisted"):
        await posting.boost(alice, secret.id)

    assert await posting.unboost(carl, post.uri) is True
    assert await posting.unboost(carl, post.uri) is False
    undo, inboxes = (await outbox(home))[-1]
    assert (
        undo["type"] == "Undo" and undo["object"]["id"] == boost.uri and undo["object"]["type"] == "Announce"
    )
    assert inboxes == ["http://one.test/inbox"]
    assert (await posting.find_post(post.id)).reblogs_count == 0  # type: ignore[union-attr]


async def test_like_and_unlike_a_remote_post_go_to_its_author(home: Instance, peer: Peer) -> None:
    alice = await local_account(home, "alice")
    bob_on_peer = peer.add_account("bob", "one.test")
    bob = await remote_follower(home, alice, peer, bob_on_peer)
    async with home.context.sessions() as session:
        remote_post = Post(
            uri="http://one.test/users/bob/statuses/9", account_id=bob.id, content_html="<p>hi</p>"
        )
        session.add(remote_post)
        await session.commit()
    posting = PostingService(home.context)

    favourite = await posting.like(alice, remote_post.uri)
    assert await posting.like(alice, remote_post.uri) == favourite
    like, inboxes = (await outbox(home))[-1]
    assert like == {
        "@context": like["@context"],
        "id": favourite.uri,
        "type": "Like",
        "actor": alice.uri,
        "object": remote_post.uri,
    }
    assert inboxes == [bob_on_peer.inbox]  # the personal inbox, as Mastodon sends likes

    assert await posting.unlike(alice, remote_post.uri) is True
    undo, inboxes = (await outbox(home))[-1]
    assert undo["type"] == "Undo" and undo["object"]["id"] == favourite.uri
    assert inboxes == [bob_on_peer.inbox]
    async with home.context.sessions() as session:
        assert (await session.scalars(select(Favourite))).all() == []


async def test_pin_and_unpin_announce_the_featured_collection(home: Instance, peer: Peer) -> None:
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    posting = PostingService(home.context)
    posts = [await posting.create(alice, f"post {number}") for number in range(6)]
    for post in posts[:5]:
        await posting.pin(alice, post.id)
    with pytest.raises(PostingError, match="at most 5"):
        await posting.pin(alice, posts[5].id)
    add, inboxes = (await outbox(home))[-1]
    assert (add["type"], add["object"], add["target"]) == ("Add", posts[4].uri, alice.featured_url)
    assert inboxes == ["http://one.test/inbox"]

    assert await posting.unpin(alice, posts[0].id) is True
    assert await posting.unpin(alice, posts[0].id) is False
    remove, _ = (await outbox(home))[-1]
    assert (remove["type"], remove["object"], remove["target"]) == (
        "Remove",
        posts[0].uri,
        alice.featured_url,
    )
    direct = await posting.create(alice, "secret", visibility="direct")
    with pytest.raises(PostingError, match="can be pinned"):
        await posting.pin(alice, direct.id)
