"""Create, Update and Delete of posts (and polls), and of actors, as Mastodon and friends send them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.models import (
    Account,
    Follow,
    MediaAttachment,
    Mention,
    Notification,
    Poll,
    PollVote,
    Post,
    PostEdit,
    PostTag,
    Tag,
    TimelineEntry,
)
from tests.federation.inbox_peer import (
    ALICE,
    PUBLIC,
    Peer,
    PeerActor,
    activity,
    create,
    deliver_and_process,
    follow_locally,
    known_actor,
    local_account,
    local_post,
    note,
    process_inbox,
    rows,
)
from tests.lab import Instance, Lab


@pytest.fixture
async def followed_bob(here: Instance, alice: Account, bob: PeerActor) -> PeerActor:
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    return bob


async def test_post_of_a_followed_account_is_kept_with_everything(
    here: Instance, peer: Peer, followed_bob: PeerActor, alice: Account
) -> None:
    bob = followed_bob
    obj = note(
        bob,
        1,
        summary="spoilers",
        sensitive=True,
        content='<p>Hello <script>alert(1)</script><a href="https://x.org/tags/fedi" class="mention hashtag evil">#fedi</a> :blob:</p>',
        contentMap={"de": "<p>Hallo</p>"},
        tag=[
            {"type": "Hashtag", "href": "https://x.org/tags/fedi", "name": "#Fedi"},
            {
                "type": "Emoji",
                "name": ":blob:",
                "icon": {"type": "Image", "url": "http://remote.test/emoji/blob.png"},
            },
        ],
        attachment=[
            {
                "type": "Document",
                "mediaType": "image/png",
                "url": "http://remote.test/media/1.png",
                "name": "a cat",
                "blurhash": "UBL_:rOpGG-oBUNG,qRj2so|=eE1w^n4S5NH",
                "width": 640,
                "height": 480,
            }
        ],
    )
    item = await deliver_and_process(here, peer, bob, create(bob, obj))
    assert item.last_error is None
    [post] = await rows(here, Post, Post.uri == obj["id"])
    assert not post.local
    assert post.content_html == (
        '<p>Hello <a href="https://x.org/tags/fedi" class="mention hashtag" rel="nofollow noopener noreferrer" target="_blank">#fedi</a> :blob:</p>'
    )
    assert (post.summary, post.sensitive, post.language, post.visibility) == (
        "spoilers",
        True,
        "de",
        "public",
    )
    assert post.url == "http://remote.test/@bob/1"
    assert post.published_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert post.emojis == [{"shortcode": "blob", "url": "http://remote.test/emoji/blob.png"}]
    [tag] = await rows(here, Tag)
    assert tag.name == "fedi"
    assert len(await rows(here, PostTag, PostTag.post_id == post.id)) == 1
    [media] = await rows(here, MediaAttachment)
    assert (media.post_id, media.media_type, media.remote_url, media.description, media.width) == (
        post.id,
        "image/png",
        "http://remote.test/media/1.png",
        "a cat",
        640,
    )
    [entry] = await rows(here, TimelineEntry)
    assert (entry.account_id, entry.post_id) == (alice.id, post.id)
    assert await rows(here, Notification) == []


async def test_post_nobody_here_cares_about_is_not_kept(here: Instance, peer: Peer, bob: PeerActor) -> None:
    item = await deliver_and_process(here, peer, bob, create(bob, note(bob, 2)))
    assert item.last_error == "nobody here follows the author, is addressed, or is replied to"
    assert await rows(here, Post) == []


async def test_mention_of_a_local_account_is_kept_and_notified(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    obj = note(
        bob,
        3,
        cc=[bob.followers, ALICE],
        content='<p><span class="h-card"><a href="http://a.test/@alice" class="u-url mention">@alice</a></span> hi</p>',
        tag=[{"type": "Mention", "href": ALICE, "name": "@alice@a.test"}],
    )
    await deliver_and_process(here, peer, bob, create(bob, obj))
    [post] = await rows(here, Post)
    [mention] = await rows(here, Mention)
    assert (mention.post_id, mention.account_id) == (post.id, alice.id)
    [notification] = await rows(here, Notification)
    assert (notification.type, notification.account_id, notification.post_id) == (
        "mention",
        alice.id,
        post.id,
    )
    # Public, and alice does not follow bob: no home timeline entry.
    assert await rows(here, TimelineEntry) == []


async def test_direct_message_reaches_only_the_addressed_account(
    here: Instance, peer: Peer, followed_bob: PeerActor, alice: Account
) -> None:
    bob = followed_bob
    carol = await local_account(here, "carol")
    await follow_locally(here, carol, bob.uri)
    obj = note(bob, 4, to=[ALICE], cc=[], tag=[{"type": "Mention", "href": ALICE, "name": "@alice"}])
    await deliver_and_process(here, peer, bob, create(bob, obj))
    [post] = await rows(here, Post)
    assert post.visibility == "direct"
    assert [entry.account_id for entry in await rows(here, TimelineEntry)] == [alice.id]


VISIBILITIES = [
    ([PUBLIC], ["FOLLOWERS"], "public"),
    (["as:Public"], [], "public"),
    (["FOLLOWERS"], [PUBLIC], "unlisted"),
    (["FOLLOWERS"], [], "followers"),
    ([], ["FOLLOWERS"], "followers"),
]


async def test_visibility_from_addressing(here: Instance, peer: Peer, followed_bob: PeerActor) -> None:
    bob = followed_bob

    def fill(addresses: list[str]) -> list[str]:
        return [bob.followers if address == "FOLLOWERS" else address for address in addresses]

    for number, (to, cc, visibility) in enumerate(VISIBILITIES):
        obj = note(bob, 50 + number, to=fill(to), cc=fill(cc))
        await deliver_and_process(here, peer, bob, create(bob, obj))
        [post] = await rows(here, Post, Post.uri == obj["id"])
        assert (to, cc, post.visibility) == (to, cc, visibility)
    assert len(await rows(here, TimelineEntry)) == len(VISIBILITIES)


async def test_reply_to_a_local_post_is_kept_and_notified(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    original = await local_post(here, alice)
    obj = note(
        bob, 6, inReplyTo=original.uri, cc=[bob.followers, ALICE], tag=[{"type": "Mention", "href": ALICE}]
    )
    await deliver_and_process(here, peer, bob, create(bob, obj))
    [reply] = await rows(here, Post, Post.uri == obj["id"])
    assert (reply.in_reply_to_id, reply.in_reply_to_account_id) == (original.id, alice.id)
    [parent] = await rows(here, Post, Post.id == original.id)
    assert parent.replies_count == 1
    # One notification, a reply, though alice is also mentioned.
    [notification] = await rows(here, Notification)
    assert notification.type == "reply"


async def test_missing_ancestors_are_fetched_five_deep(
    here: Instance, peer: Peer, followed_bob: PeerActor
) -> None:
    bob = followed_bob
    carol = peer.actor("http://remote.test/users/carol")
    previous = None
    for number in range(1, 8):
        peer.serve(note(carol, number, inReplyTo=previous))
        previous = f"{carol.uri}/statuses/{number}"
    reply = note(bob, 7, inReplyTo=previous)
    await deliver_and_process(here, peer, bob, create(bob, reply))
    kept = {post.uri: post for post in await rows(here, Post)}
    assert set(kept) == {reply["id"]} | {f"{carol.uri}/statuses/{n}" for n in range(3, 8)}
    assert kept[reply["id"]].in_reply_to_id == kept[f"{carol.uri}/statuses/7"].id
    assert kept[f"{carol.uri}/statuses/4"].in_reply_to_id == kept[f"{carol.uri}/statuses/3"].id
    # Only what was delivered is in a timeline.
    [entry] = await rows(here, TimelineEntry)
    assert entry.post_id == kept[reply["id"]].id
    for number in range(1, 3):
        assert peer.fetches(f"{carol.uri}/statuses/{number}") == 0


async def test_missing_parent_that_cannot_be_fetched_does_not_stop_the_reply(
    here: Instance, peer: Peer, followed_bob: PeerActor
) -> None:
    bob = followed_bob
    await deliver_and_process(
        here, peer, bob, create(bob, note(bob, 8, inReplyTo="http://remote.test/users/x/statuses/404"))
    )
    [post] = await rows(here, Post)
    assert post.in_reply_to_uri == "http://remote.test/users/x/statuses/404" and post.in_reply_to_id is None


async def test_object_from_another_server_is_not_created(
    here: Instance, lab: Lab, peer: Peer, followed_bob: PeerActor
) -> None:
    bob = followed_bob
    elsewhere = Peer(lab).host("other.test").actor("http://other.test/users/o")
    forged = {**note(elsewhere, 1), "attributedTo": bob.uri}
    item = await deliver_and_process(
        here, peer, bob, {**create(bob, forged), "id": f"{bob.uri}/statuses/x/activity"}
    )
    assert item.last_error == f"the object {forged['id']} is not on the server of its actor {bob.uri}"
    assert await rows(here, Post) == []


async def test_object_attributed_to_someone_else_is_not_created(
    here: Instance, peer: Peer, followed_bob: PeerActor
) -> None:
    bob = followed_bob
    obj = {**note(bob, 9), "attributedTo": "http://remote.test/users/carol"}
    item = await deliver_and_process(here, peer, bob, create(bob, obj))
    assert item.last_error == f"{bob.uri} created a post attributed to http://remote.test/users/carol"


async def test_article_title_and_page_are_kept(here: Instance, peer: Peer, followed_bob: PeerActor) -> None:
    bob = followed_bob
    article = {**note(bob, 10), "type": "Article", "name": "A <b>title</b>", "content": "<p>Body</p>"}
    await deliver_and_process(here, peer, bob, create(bob, article))
    [post] = await rows(here, Post)
    assert post.object_type == "Article"
    assert post.content_html == "<p><strong>A &lt;b&gt;title&lt;/b&gt;</strong></p><p>Body</p>"


# ------------------------------------------------------------------------------------------------
# Polls


async def test_question_is_kept_with_its_poll(here: Instance, peer: Peer, followed_bob: PeerActor) -> None:
    bob = followed_bob
    question = {
        **note(bob, 11),
        "type": "Question",
        "endTime": "2030-01-01T00:00:00Z",
        "votersCount": 3,
        "oneOf": [
            {"type": "Note", "name": "Yes", "replies": {"type": "Collection", "totalItems": 2}},
            {"type": "Note", "name": "No", "replies": {"type": "Collection", "totalItems": 1}},
        ],
    }
    await deliver_and_process(here, peer, bob, create(bob, question))
    [poll] = await rows(here, Poll)
    assert poll.options == [{"title": "Yes", "votes": 2}, {"title": "No", "votes": 1}]
    assert (poll.multiple, poll.votes_count, poll.voters_count) == (False, 3, 3)
    assert poll.expires_at == datetime(2030, 1, 1, tzinfo=UTC)

    # Mastodon sends the new counts as an Update of the Question: no edit is recorded for it.
    question["oneOf"][1]["replies"]["totalItems"] = 5  # type: ignore[index]
    update = activity(bob, "Update", {**question, "updated": "2024-05-02T00:00:00Z"}, "updates/11")
    await deliver_and_process(here, peer, bob, update)
    [poll] = await rows(here, Poll)
    assert poll.options[1] == {"title": "No", "votes": 5}
    assert await rows(here, PostEdit) == []


async def vote(bob: PeerActor, poll_post: Post, choice: str, number: int) -> dict[str, object]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{bob.uri}#votes/{number}/activity",
        "type": "Create",
        "actor": bob.uri,
        "to": ALICE,
        "object": {
            "id": f"{bob.uri}#votes/{number}",
            "type": "Note",
            "name": choice,
            "attributedTo": bob.uri,
            "to": ALICE,
            "inReplyTo": poll_post.uri,
        },
    }


@pytest.mark.parametrize("multiple", [False, True])
async def test_votes_on_a_local_poll_are_counted(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account, multiple: bool
) -> None:
    post = await local_post(here, alice, "which?", object_type="Question")
    async with here.context.sessions() as session:
        session.add(
            Poll(
                post_id=post.id,
                options=[{"title": "tea", "votes": 0}, {"title": "coffee", "votes": 0}],
                multiple=multiple,
                expires_at=datetime.now(UTC) + timedelta(days=1),
            )
        )
        await session.commit()
    first = await deliver_and_process(here, peer, bob, await vote(bob, post, "tea", 1))
    assert first.last_error is None
    second = await deliver_and_process(here, peer, bob, await vote(bob, post, "coffee", 2))
    again = await deliver_and_process(here, peer, bob, await vote(bob, post, "tea", 3))
    assert again.last_error == "already voted"
    [poll] = await rows(here, Poll)
    if multiple:
        assert second.last_error is None
        assert [option["votes"] for option in poll.options] == [1, 1]
        assert (poll.votes_count, poll.voters_count) == (2, 1)
    else:
        assert second.last_error == "already voted"
        assert [option["votes"] for option in poll.options] == [1, 0]
        assert (poll.votes_count, poll.voters_count) == (1, 1)
    assert len(await rows(here, PollVote)) == (2 if multiple else 1)
    # A vote is not a post.
    assert await rows(here, Post, Post.local.is_(False)) == []  # type: ignore[attr-defined]


async def test_vote_on_an_ended_poll_is_refused(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    post = await local_post(here, alice, "which?", object_type="Question")
    async with here.context.sessions() as session:
        session.add(
            Poll(
                post_id=post.id,
                options=[{"title": "tea", "votes": 0}],
                expires_at=datetime.now(UTC) - timedelta(minutes=1),
            )
        )
        await session.commit()
    item = await deliver_and_process(here, peer, bob, await vote(bob, post, "tea", 4))
    assert item.last_error == "the poll has ended"


# ------------------------------------------------------------------------------------------------
# Updates and deletes


async def test_update_keeps_the_previous_version(here: Instance, peer: Peer, followed_bob: PeerActor) -> None:
    bob = followed_bob
    original = note(bob, 12)
    await deliver_and_process(here, peer, bob, create(bob, original))
    edited = {**original, "content": "<p>edited</p>", "summary": "cw", "updated": "2024-05-01T13:00:00Z"}
    await deliver_and_process(here, peer, bob, activity(bob, "Update", edited, "updates/12a"))
    [post] = await rows(here, Post)
    assert (post.content_html, post.summary) == ("<p>edited</p>", "cw")
    assert post.edited_at == datetime(2024, 5, 1, 13, tzinfo=UTC)
    [previous] = await rows(here, PostEdit)
    assert (previous.post_id, previous.content_html, previous.summary) == (
        post.id,
        "<p>post number 12</p>",
        None,
    )

    # An older Update arriving late changes nothing.
    stale = {**original, "content": "<p>stale</p>", "updated": "2024-05-01T12:30:00Z"}
    await deliver_and_process(here, peer, bob, activity(bob, "Update", stale, "updates/12b"))
    [post] = await rows(here, Post)
    assert post.content_html == "<p>edited</p>"


async def test_update_of_a_post_not_kept_is_ignored(here: Instance, peer: Peer, bob: PeerActor) -> None:
    item = await deliver_and_process(here, peer, bob, activity(bob, "Update", note(bob, 13), "updates/13"))
    assert item.last_error == f"{bob.uri}/statuses/13 is not kept here"


async def test_update_of_the_actor_refreshes_profile_and_key(
    here: Instance, peer: Peer, bob: PeerActor
) -> None:
    await known_actor(here, bob)
    rotated = peer.rotate_key(bob)
    changed = {**rotated.document, "name": "Bob Renamed", "summary": "<p>new bio</p>"}
    await deliver_and_process(here, peer, bob, activity(bob, "Update", changed, "updates/profile"))
    [account] = await rows(here, Account, Account.uri == bob.uri)
    assert (account.display_name, account.summary_html) == ("Bob Renamed", "<p>new bio</p>")
    assert account.public_key_pem == rotated.document["publicKey"]["publicKeyPem"]


async def test_update_of_another_actor_is_ignored(here: Instance, peer: Peer, bob: PeerActor) -> None:
    carol = peer.actor("http://remote.test/users/carol")
    item = await deliver_and_process(
        here, peer, bob, activity(bob, "Update", {**carol.document, "name": "pwned"}, "updates/x")
    )
    assert item.last_error == "an actor may only update itself"


@pytest.mark.parametrize("shape", ["tombstone", "uri"])
async def test_delete_removes_the_post_and_all_hanging_off_it(
    here: Instance, peer: Peer, followed_bob: PeerActor, alice: Account, shape: str
) -> None:
    bob = followed_bob
    original = await local_post(here, alice)
    obj = note(bob, 14, inReplyTo=original.uri, cc=[ALICE], tag=[{"type": "Mention", "href": ALICE}])
    await deliver_and_process(here, peer, bob, create(bob, obj))
    assert len(await rows(here, TimelineEntry)) == 1
    target = {"id": obj["id"], "type": "Tombstone"} if shape == "tombstone" else obj["id"]
    item = await deliver_and_process(
        here, peer, bob, activity(bob, "Delete", target, "delete/14", to=[PUBLIC])
    )
    assert item.last_error is None
    assert await rows(here, Post, Post.uri == obj["id"]) == []
    assert await rows(here, TimelineEntry) == []
    assert await rows(here, Notification) == []
    assert await rows(here, Mention) == []
    [parent] = await rows(here, Post)
    assert parent.replies_count == 0


async def test_delete_of_someone_elses_post_is_ignored(
    here: Instance, peer: Peer, followed_bob: PeerActor, alice: Account
) -> None:
    bob = followed_bob
    carol = peer.actor("http://remote.test/users/carol")
    await known_actor(here, carol)
    await deliver_and_process(here, peer, bob, create(bob, note(bob, 15)))
    item = await deliver_and_process(
        here, peer, carol, activity(carol, "Delete", f"{bob.uri}/statuses/15", "delete/x")
    )
    assert item.last_error == f"{bob.uri}/statuses/15 is not kept here"
    assert len(await rows(here, Post)) == 1

    local = await local_post(here, alice)
    item = await deliver_and_process(here, peer, carol, activity(carol, "Delete", local.uri, "delete/y"))
    assert item.last_error == f"{carol.uri} cannot delete {local.uri}, which is on another server"


async def test_delete_of_the_actor_removes_it_and_its_content(
    here: Instance, peer: Peer, followed_bob: PeerActor, alice: Account
) -> None:
    bob = followed_bob
    mine = await local_post(here, alice)
    await deliver_and_process(here, peer, bob, create(bob, note(bob, 16)))
    await deliver_and_process(here, peer, bob, activity(bob, "Like", mine.uri, "likes/1"))
    await deliver_and_process(here, peer, bob, activity(bob, "Follow", ALICE, "follows/1"))
    [liked] = await rows(here, Post, Post.id == mine.id)
    assert liked.favourites_count == 1

    delete = activity(bob, "Delete", bob.uri, "delete", to=[PUBLIC])
    item = await deliver_and_process(here, peer, bob, delete)
    assert item.last_error is None
    [account] = await rows(here, Account, Account.uri == bob.uri)
    assert account.gone_at is not None
    assert await rows(here, Post, Post.account_id == account.id) == []
    assert await rows(here, Follow) == []
    assert await rows(here, Notification) == []
    [mine] = await rows(here, Post)
    assert mine.favourites_count == 0

    # Replayed: nothing left to do, and nothing breaks.
    assert (await peer.deliver(here, bob, {**delete, "id": f"{bob.uri}#delete-again"})).status_code == 202
    await process_inbox(here)
