"""Notifications and the home timeline, as the services return them and as `herold` prints them."""

from __future__ import annotations

import json

import pytest

from app.models import Account, Notification
from app.services.notifications import NotificationService
from app.services.timelines import TimelineService
from tests.federation.inbox_peer import (
    ALICE,
    BOB,
    PUBLIC,
    Peer,
    PeerActor,
    activity,
    create,
    follow_locally,
    home_of_alice,
    known_actor,
    local_post,
    note,
    process_inbox,
    rows,
)
from tests.lab import Instance, Lab
from tests.processes import herold_env, run_herold


@pytest.fixture
async def busy(lab: Lab) -> tuple[Instance, Account, PeerActor]:
    """alice follows bob; bob follows her, mentions her, likes, reacts to and boosts her post."""
    here, alice = await home_of_alice(lab)
    peer = Peer(lab).host("remote.test")
    bob = peer.actor(BOB)
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    mine = await local_post(here, alice, "my post")
    mention = note(bob, 1, cc=[ALICE], content="<p>hi @alice</p>", tag=[{"type": "Mention", "href": ALICE}])
    for document in [
        activity(bob, "Follow", ALICE, "follows/1"),
        create(bob, mention),
        activity(bob, "Like", mine.uri, "likes/1"),
        {**activity(bob, "EmojiReact", mine.uri, "reacts/1"), "content": "🍵"},
        activity(bob, "Announce", mine.uri, "announces/1", to=[PUBLIC], cc=[bob.followers]),
        create(bob, note(bob, 2, content="<p>plain post</p>")),
    ]:
        assert (await peer.deliver(here, bob, document)).status_code == 202
        # One at a time, so notifications come in a known order.
        await process_inbox(here)
    return here, alice, bob


async def test_notifications_newest_first(busy: tuple[Instance, Account, PeerActor]) -> None:
    here, alice, bob = busy
    views = await NotificationService(here.context).for_account(alice)
    assert [view.notification.type for view in views] == [
        "reblog",
        "reaction",
        "favourite",
        "mention",
        "follow",
    ]
    reblog, reaction, favourite, mention, follow = (view.to_dict() for view in views)
    assert favourite["status"]["favourites_count"] == 1
    assert reblog["account"]["acct"] == "bob@remote.test"
    assert reblog["status"]["content"] == "<p>my post</p>"
    assert reaction["emoji"] == "🍵"
    assert mention["status"]["uri"] == f"{bob.uri}/statuses/1"
    assert mention["status"]["mentions"][0]["acct"] == "alice"
    assert follow["status"] is None
    # Paging goes further back.
    older = await NotificationService(here.context).for_account(
        alice, limit=2, max_id=views[1].notification.id
    )
    assert [view.notification.type for view in older] == ["favourite", "mention"]


async def test_home_timeline_newest_first(busy: tuple[Instance, Account, PeerActor]) -> None:
    here, alice, bob = busy
    posts = await TimelineService(here.context).home(alice)
    shapes = [post.to_dict() for post in posts]
    assert [shape["uri"] for shape in shapes] == [
        f"{bob.uri}/statuses/2",
        f"{bob.uri}#announces/1",
        f"{bob.uri}/statuses/1",
    ]
    boost = shapes[1]
    assert boost["reblog"]["content"] == "<p>my post</p>" and boost["reblog"]["account"]["acct"] == "alice"
    assert shapes[0]["account"]["acct"] == "bob@remote.test" and shapes[0]["visibility"] == "public"


async def test_notifications_never_come_from_oneself(busy: tuple[Instance, Account, PeerActor]) -> None:
    here, alice, _ = busy
    for notification in await rows(here, Notification):
        assert notification.from_account_id != alice.id


async def test_cli_prints_notifications_and_timeline_as_json(
    busy: tuple[Instance, Account, PeerActor], tmp_path: object
) -> None:
    here, _, bob = busy
    env = herold_env(here.settings.data_dir, here.settings.database_url, LOCAL_DOMAIN="a.test", HTTPS="false")

    notifications = run_herold(["notifications", "alice", "--json"], env)
    assert notifications.returncode == 0, notifications.stderr
    printed = json.loads(notifications.stdout)
    assert [item["type"] for item in printed] == ["reblog", "reaction", "favourite", "mention", "follow"]
    assert printed[3]["status"]["account"]["uri"] == bob.uri

    timeline = run_herold(["timeline", "alice", "--json", "--limit", "2"], env)
    assert timeline.returncode == 0, timeline.stderr
    assert [item["uri"] for item in json.loads(timeline.stdout)] == [
        f"{bob.uri}/statuses/2",
        f"{bob.uri}#announces/1",
    ]

    missing = run_herold(["notifications", "nobody", "--json"], env)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == "herold: there is no local account named 'nobody'"
