"""Announce, Like, EmojiReact and their Undo; Block, Flag, Move, and the featured collection."""

from __future__ import annotations

import pytest

from app.models import (
    Account,
    AccountBlock,
    DeliveryJob,
    Favourite,
    Follow,
    FollowState,
    Notification,
    OutboxActivity,
    Pin,
    Post,
    Reaction,
    Report,
    Role,
    TimelineEntry,
)
from tests.federation.inbox_peer import (
    ALICE,
    MASTODON_CONTEXT,
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


def announce(actor: PeerActor, obj: object, number: int) -> dict[str, object]:
    return activity(
        actor,
        "Announce",
        obj,
        f"announces/{number}",
        to=[PUBLIC],
        cc=[actor.followers],
        published="2024-05-02T10:00:00Z",
    )


def strip(document: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in document.items() if key != "@context"}


# ------------------------------------------------------------------------------------------------
# Announce


async def test_boost_of_a_local_post_is_counted_notified_and_undone(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    mine = await local_post(here, alice)
    boost = announce(bob, mine.uri, 1)
    assert (await deliver_and_process(here, peer, bob, boost)).last_error is None
    [reblog] = await rows(here, Post, Post.reblog_of_id == mine.id)
    assert (reblog.uri, reblog.visibility) == (boost["id"], "public")
    [counted] = await rows(here, Post, Post.id == mine.id)
    assert counted.reblogs_count == 1
    [notification] = await rows(here, Notification)
    assert (notification.type, notification.post_id) == ("reblog", mine.id)

    await deliver_and_process(here, peer, bob, activity(bob, "Undo", strip(boost), "announces/1/undo"))
    assert await rows(here, Post, Post.reblog_of_id == mine.id) == []
    [counted] = await rows(here, Post, Post.id == mine.id)
    assert counted.reblogs_count == 0


async def test_boost_by_a_followed_account_fetches_the_post_from_its_origin(
    here: Instance, lab: Lab, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    other = Peer(lab).host("other.test")
    carol = other.actor("http://other.test/users/carol")
    original = other.serve(note(carol, 1, content="<p>the real text</p>"))
    # The embedded copy lies; the origin's copy is what is kept.
    embedded = {**original, "content": "<p>forged text</p>"}
    await deliver_and_process(here, peer, bob, announce(bob, embedded, 2))
    [kept] = await rows(here, Post, Post.uri == original["id"])
    assert kept.content_html == "<p>the real text</p>"
    [reblog] = await rows(here, Post, Post.reblog_of_id == kept.id)
    [entry] = await rows(here, TimelineEntry)
    assert (entry.account_id, entry.post_id) == (alice.id, reblog.id)
    assert other.fetches(original["id"]) == 1


async def test_boost_whose_post_its_origin_does_not_serve_is_dropped(
    here: Instance, lab: Lab, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    Peer(lab).host("mastodon.social")
    bogus = {
        "type": "Note",
        "id": "http://mastodon.social/users/emelie/statuses/101849165031453404",
        "attributedTo": "http://mastodon.social/users/emelie",
        "content": "this is a public toot",
        "to": [PUBLIC],
    }
    item = await deliver_and_process(here, peer, bob, announce(bob, bogus, 3))
    assert item.last_error == f"could not fetch {bogus['id']}: {bogus['id']} answered 404"
    assert await rows(here, Post) == []


async def test_boost_whose_post_url_redirects_to_another_server_claiming_it_is_dropped(
    here: Instance, lab: Lab, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    other = Peer(lab).host("other.test")
    carol = other.actor("http://other.test/users/carol")
    post_uri = f"{carol.uri}/statuses/1"
    # other.test's post URL redirects (an open redirect, say) to evil.test, which serves a post
    # in other.test's name: only other.test may say what its posts are.
    other.redirect(post_uri, "http://evil.test/forged")
    evil = Peer(lab).host("evil.test")
    evil.documents["http://evil.test/forged"] = note(carol, 1, content="<p>forged text</p>")
    item = await deliver_and_process(here, peer, bob, announce(bob, post_uri, 5))
    assert item.last_error == f"{post_uri} redirected to http://evil.test/forged, on another server"
    assert await rows(here, Post) == []


async def test_boost_by_someone_nobody_follows_is_dropped(here: Instance, peer: Peer, bob: PeerActor) -> None:
    item = await deliver_and_process(
        here, peer, bob, announce(bob, "http://remote.test/users/x/statuses/1", 4)
    )
    assert item.last_error == "nobody here follows the booster, and the post is not ours"


async def test_group_sharing_a_post_reads_as_a_boost(here: Instance, lab: Lab, alice: Account) -> None:
    """Lemmy: a community Announces the Create of a Page by one of its members (same server)."""
    lemmy = Peer(lab).host("lemmy.test")
    group = lemmy.actor("http://lemmy.test/c/tea", actor_type="Group")
    member = lemmy.actor("http://lemmy.test/u/leaf")
    await known_actor(here, group)
    await follow_locally(here, alice, group.uri)
    page = {
        "type": "Page",
        "id": "http://lemmy.test/post/1",
        "attributedTo": member.uri,
        "to": [group.uri, PUBLIC],
        "name": "Oolong",
        "content": "<p>tasty</p>",
        "audience": group.uri,
        "published": "2024-05-01T12:00:00Z",
    }
    inner = {
        "id": "http://lemmy.test/activities/create/1",
        "type": "Create",
        "actor": member.uri,
        "to": [group.uri, PUBLIC],
        "object": page,
    }
    wrapped = activity(group, "Announce", inner, "announce/1", to=[PUBLIC], cc=[group.followers])
    wrapped["id"] = "http://lemmy.test/activities/announce/1"
    item = await deliver_and_process(here, lemmy, group, wrapped)
    assert item.last_error is None
    [kept] = await rows(here, Post, Post.uri == page["id"])
    assert kept.content_html == "<p><strong>Oolong</strong></p><p>tasty</p>"
    [reblog] = await rows(here, Post, Post.reblog_of_id == kept.id)
    assert [entry.post_id for entry in await rows(here, TimelineEntry)] == [reblog.id]


async def test_followers_only_post_cannot_be_boosted(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    private = await local_post(here, alice, visibility="followers")
    item = await deliver_and_process(here, peer, bob, announce(bob, private.uri, 5))
    assert item.last_error == f"{private.uri} may not be boosted"


# ------------------------------------------------------------------------------------------------
# Like and EmojiReact


@pytest.mark.parametrize("undo_shape", ["embedded", "compact"])
async def test_like_of_a_local_post_is_counted_notified_and_undone(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account, undo_shape: str
) -> None:
    mine = await local_post(here, alice)
    like = activity(bob, "Like", mine.uri, "likes/1")
    await deliver_and_process(here, peer, bob, like)
    [favourite] = await rows(here, Favourite)
    assert (favourite.post_id, favourite.uri) == (mine.id, like["id"])
    [counted] = await rows(here, Post)
    assert counted.favourites_count == 1
    [notification] = await rows(here, Notification)
    assert (notification.type, notification.account_id, notification.post_id) == (
        "favourite",
        alice.id,
        mine.id,
    )

    # Delivered twice: counted once.
    await deliver_and_process(here, peer, bob, {**like, "id": f"{bob.uri}#likes/1-again"})
    [counted] = await rows(here, Post)
    assert counted.favourites_count == 1

    inner: object = strip(like) if undo_shape == "embedded" else like["id"]
    await deliver_and_process(here, peer, bob, activity(bob, "Undo", inner, "likes/1/undo"))
    assert await rows(here, Favourite) == []
    [counted] = await rows(here, Post)
    assert counted.favourites_count == 0


async def test_misskey_like_with_a_reaction_is_a_favourite(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    mine = await local_post(here, alice)
    await deliver_and_process(
        here,
        peer,
        bob,
        {**activity(bob, "Like", mine.uri, "likes/2"), "_misskey_reaction": "👍", "content": "👍"},
    )
    assert len(await rows(here, Favourite)) == 1


async def test_like_of_a_remote_post_is_not_kept(here: Instance, peer: Peer, bob: PeerActor) -> None:
    item = await deliver_and_process(
        here, peer, bob, activity(bob, "Like", "http://remote.test/users/x/statuses/1", "likes/3")
    )
    assert item.last_error == "http://remote.test/users/x/statuses/1 is not a post of this server"


async def test_undo_of_someone_elses_like_is_refused(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    mine = await local_post(here, alice)
    like = activity(bob, "Like", mine.uri, "likes/4")
    await deliver_and_process(here, peer, bob, like)
    carol = peer.actor("http://remote.test/users/carol")
    item = await deliver_and_process(here, peer, carol, activity(carol, "Undo", strip(like), "undo/x"))
    assert item.last_error == f"{carol.uri} cannot undo an activity of {bob.uri}"
    assert len(await rows(here, Favourite)) == 1


async def test_emoji_reactions_are_kept_notified_and_undone(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    mine = await local_post(here, alice)
    react = {**activity(bob, "EmojiReact", mine.uri, "reacts/1"), "content": "🍵"}
    custom = {
        **activity(bob, "EmojiReact", mine.uri, "reacts/2"),
        "content": ":blobcat:",
        "tag": [
            {
                "type": "Emoji",
                "name": ":blobcat:",
                "icon": {"type": "Image", "url": "http://remote.test/e/blobcat.png"},
            }
        ],
    }
    await deliver_and_process(here, peer, bob, react)
    await deliver_and_process(here, peer, bob, custom)
    reactions = {reaction.content: reaction for reaction in await rows(here, Reaction)}
    assert set(reactions) == {"🍵", ":blobcat:"}
    assert reactions[":blobcat:"].emoji_url == "http://remote.test/e/blobcat.png"
    notifications = await rows(here, Notification)
    assert sorted((n.type, n.detail) for n in notifications) == [
        ("reaction", ":blobcat:"),
        ("reaction", "🍵"),
    ]

    await deliver_and_process(here, peer, bob, activity(bob, "Undo", strip(react), "reacts/1/undo"))
    assert [reaction.content for reaction in await rows(here, Reaction)] == [":blobcat:"]


async def test_reactions_that_are_not_emoji_are_refused(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    mine = await local_post(here, alice)
    cases = [
        ("hello", "'hello' is not an emoji"),
        (None, "'' is not an emoji"),
        (":nope:", "the custom emoji :nope: comes without its image"),
    ]
    for number, (content, reason) in enumerate(cases):
        react = activity(bob, "EmojiReact", mine.uri, f"reacts/x{number}")
        if content is not None:
            react["content"] = content
        item = await deliver_and_process(here, peer, bob, react)
        assert (content, item.last_error) == (content, reason)
    assert await rows(here, Reaction) == []


# ------------------------------------------------------------------------------------------------
# Block, Flag, Move, featured collection


async def test_block_ends_follows_both_ways_and_undo_lifts_it(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    await deliver_and_process(here, peer, bob, activity(bob, "Follow", ALICE, "follows/1"))
    await follow_locally(here, alice, bob.uri)
    assert len(await rows(here, Follow)) == 2
    block = activity(bob, "Block", ALICE, "blocks/1")
    await deliver_and_process(here, peer, bob, block)
    [row] = await rows(here, AccountBlock)
    assert (row.target_account_id, row.uri) == (alice.id, block["id"])
    assert await rows(here, Follow) == []
    # Followed again since (our follows are not checked against blocks received): the peer
    # repeating its Block ends that one too.
    await follow_locally(here, alice, bob.uri)
    await deliver_and_process(here, peer, bob, {**block, "id": f"{bob.uri}#blocks/2"})
    assert len(await rows(here, AccountBlock)) == 1 and await rows(here, Follow) == []

    await deliver_and_process(here, peer, bob, activity(bob, "Undo", strip(block), "blocks/1/undo"))
    assert await rows(here, AccountBlock) == []


async def test_flag_becomes_a_report_for_the_admins(here: Instance, peer: Peer, alice: Account) -> None:
    admin = await local_account(here, "admin", role=Role.ADMIN)
    reporter = peer.actor("http://remote.test/actor", actor_type="Application")
    mine = await local_post(here, alice)
    flag = {
        "@context": MASTODON_CONTEXT,
        "id": "http://remote.test/2f4c-flag",
        "type": "Flag",
        "actor": reporter.uri,
        "content": "<p>Spam &amp; worse</p>",
        "object": [ALICE, mine.uri, "http://remote.test/users/x/statuses/9"],
    }
    await deliver_and_process(here, peer, reporter, flag)
    [report] = await rows(here, Report)
    assert (report.target_account_id, report.post_ids, report.comment, report.uri) == (
        alice.id,
        [mine.id],
        "Spam & worse",
        flag["id"],
    )
    [notification] = await rows(here, Notification)
    assert (notification.type, notification.account_id) == ("admin.report", admin.id)


async def test_flag_about_nobody_here_is_ignored(here: Instance, peer: Peer, bob: PeerActor) -> None:
    flag = activity(bob, "Flag", ["http://remote.test/users/x"], "flags/1", content="hm")
    item = await deliver_and_process(here, peer, bob, flag)
    assert item.last_error == "the report is about nobody of this server"


async def test_move_moves_local_followers_to_the_new_account(
    here: Instance, lab: Lab, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    new_home = Peer(lab).host("new.test")
    new_bob = new_home.actor("http://new.test/users/bob", alsoKnownAs=[bob.uri])
    move = activity(bob, "Move", bob.uri, "moves/1", target=new_bob.uri)
    assert (await deliver_and_process(here, peer, bob, move)).last_error is None
    [old] = await rows(here, Account, Account.uri == bob.uri)
    assert old.moved_to_uri == new_bob.uri
    [row] = await rows(here, Follow)
    [new] = await rows(here, Account, Account.uri == new_bob.uri)
    assert (row.follower_id, row.followee_id, row.state) == (alice.id, new.id, FollowState.PENDING)
    sent = {item.activity_type: item for item in await rows(here, OutboxActivity)}
    assert sent["Follow"].payload["object"] == new_bob.uri and sent["Follow"].payload["id"] == row.uri
    assert sent["Undo"].payload["object"]["object"] == bob.uri
    assert {job.inbox_url for job in await rows(here, DeliveryJob)} == {
        f"{new_bob.uri}/inbox",
        f"{bob.uri}/inbox",
    }
    [notification] = await rows(here, Notification)
    assert notification.type == "move"


async def test_move_to_an_account_that_does_not_claim_the_old_one_is_refused(
    here: Instance, lab: Lab, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    impostor = Peer(lab).host("new.test").actor("http://new.test/users/bob")
    item = await deliver_and_process(
        here, peer, bob, activity(bob, "Move", bob.uri, "moves/2", target=impostor.uri)
    )
    assert item.last_error == f"{impostor.uri} does not list {bob.uri} in alsoKnownAs"
    [row] = await rows(here, Follow)
    assert (
        row.followee_id != 0 and (await rows(here, Account, Account.uri == bob.uri))[0].moved_to_uri is None
    )


async def test_featured_collection_add_and_remove(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    pinned = peer.serve(note(bob, 1))
    featured = bob.document["featured"]
    await deliver_and_process(here, peer, bob, activity(bob, "Add", pinned["id"], "add/1", target=featured))
    [pin] = await rows(here, Pin)
    [post] = await rows(here, Post)
    assert pin.post_id == post.id and post.uri == pinned["id"]
    await deliver_and_process(
        here, peer, bob, activity(bob, "Remove", pinned["id"], "remove/1", target=featured)
    )
    assert await rows(here, Pin) == []

    item = await deliver_and_process(
        here, peer, bob, activity(bob, "Add", pinned["id"], "add/2", target="http://remote.test/c/mods")
    )
    assert (
        item.last_error == "Add on 'http://remote.test/c/mods', which is not the actor's featured collection"
    )


async def test_create_then_boost_of_the_same_post_keeps_one_copy(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    obj = note(bob, 2)
    await peer.deliver(here, bob, create(bob, obj))
    await peer.deliver(here, bob, announce(bob, obj, 6))
    await process_inbox(here)
    assert len(await rows(here, Post, Post.uri == obj["id"])) == 1
    assert len(await rows(here, Post)) == 2
