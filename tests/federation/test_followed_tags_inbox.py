"""A public post received from another server reaches the home timelines of those here who follow
one of its hashtags, as on Mastodon; an unlisted one does not."""

from __future__ import annotations

from app.models import Account, Post, TimelineEntry
from app.services.hashtags import HashtagService
from app.services.viewer import Viewer
from tests.federation.inbox_peer import (
    PUBLIC,
    Peer,
    PeerActor,
    create,
    deliver_and_process,
    follow_locally,
    known_actor,
    local_account,
    note,
    rows,
)
from tests.lab import Instance

FEDI = [{"type": "Hashtag", "href": "https://x.org/tags/fedi", "name": "#Fedi"}]


async def test_received_public_posts_reach_followers_of_their_hashtags(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    carol = await local_account(here, "carol")
    await HashtagService(here.context, Viewer(account=carol, acting_ids=frozenset({carol.id}))).follow("fedi")

    public = note(bob, 1, tag=FEDI, content="<p>About #fedi</p>")
    unlisted = note(bob, 2, to=[bob.followers], cc=[PUBLIC], tag=FEDI, content="<p>Quiet #fedi</p>")
    untagged = note(bob, 3, content="<p>Nothing tagged</p>")
    for obj in (public, unlisted, untagged):
        await deliver_and_process(here, peer, bob, create(bob, obj))

    carols = {
        entry.post_id for entry in await rows(here, TimelineEntry, TimelineEntry.account_id == carol.id)
    }
    [kept] = await rows(here, Post, Post.uri == public["id"])
    others = {post.id for post in await rows(here, Post, Post.uri.in_([unlisted["id"], untagged["id"]]))}
    assert carols == {kept.id} and len(others) == 2
