"""After-commit events: a listener hears of each committed timeline entry, notification, edit and
deletion exactly once, and of nothing a rolled-back transaction wrote."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest
from sqlmodel import select

from app.models import Notification, NotificationType
from app.services.events import (
    Event,
    NotificationAdded,
    PostDeleted,
    PostEdited,
    PostPublished,
    TimelineEntryAdded,
)
from app.services.following import FollowingService
from app.services.notifications import notify
from app.services.posting import PostingService
from app.services.timelines import add_to_home
from tests.federation.inbox_peer import (
    BOB,
    Peer,
    activity,
    create,
    follow_locally,
    home_of_alice,
    known_actor,
    local_account,
    note,
    process_inbox,
)
from tests.lab import Instance, Lab

# What streaming and notifications listen for; the public cache's own events (profile, follow and
# moderation changes) are tested with the cache (tests/web/test_public_cache.py).
HEARD_KINDS = (TimelineEntryAdded, PostPublished, NotificationAdded, PostEdited, PostDeleted)


def listen(instance: Instance, received: list[Event]) -> Callable[[], None]:
    def hear(event: Event) -> None:
        if isinstance(event, HEARD_KINDS):
            received.append(event)

    return instance.context.events.subscribe(hear)


def without_ids(heard: list[Event]) -> list[Event]:
    """The events with the new notifications' ids left out, for comparing with expected ones."""
    return [
        dataclasses.replace(item, notification_id=None) if isinstance(item, NotificationAdded) else item
        for item in heard
    ]


@pytest.fixture
def heard(instance: Instance) -> Iterator[list[Event]]:
    received: list[Event] = []
    stop = listen(instance, received)
    yield received
    stop()


async def test_a_post_announces_each_timeline_entry_and_notification_once(
    instance: Instance, heard: list[Event]
) -> None:
    alice = await local_account(instance, "alice")
    carol = await local_account(instance, "carol")
    await FollowingService(instance.context).follow(carol, "@alice@a.test")
    assert without_ids(heard) == [NotificationAdded(alice.id, carol.id, NotificationType.FOLLOW)]
    # The event names the notification it announces (streaming sends that one).
    async with instance.context.sessions() as session:
        stored = (await session.scalars(select(Notification))).one()
    assert isinstance(heard[0], NotificationAdded) and heard[0].notification_id == stored.id
    heard.clear()

    post = await PostingService(instance.context).create(alice, "hello @carol")

    assert sorted(without_ids(heard), key=repr) == sorted(
        [
            PostPublished(post.id, alice.id, local=True),
            TimelineEntryAdded(alice.id, post.id),
            TimelineEntryAdded(carol.id, post.id),
            NotificationAdded(carol.id, alice.id, NotificationType.MENTION, post.id),
        ],
        key=repr,
    )


async def test_an_edit_and_a_delete_are_announced(instance: Instance, heard: list[Event]) -> None:
    alice = await local_account(instance, "alice")
    posting = PostingService(instance.context)
    post = await posting.create(alice, "first")
    heard.clear()
    await posting.edit(alice, post.id, "second")
    assert heard == [PostEdited(post.id, alice.id)]
    await posting.delete(alice, post.id)
    assert heard == [PostEdited(post.id, alice.id), PostDeleted(post.id, alice.id)]


async def test_nothing_is_announced_for_a_rolled_back_transaction(
    instance: Instance, heard: list[Event]
) -> None:
    alice = await local_account(instance, "alice")
    carol = await local_account(instance, "carol")
    post = await PostingService(instance.context).create(alice, "hello")
    heard.clear()
    async with instance.context.sessions() as session:
        await add_to_home(session, [carol.id], post.id)
        await notify(
            session, account=carol, from_account=alice, kind=NotificationType.FAVOURITE, post_id=post.id
        )
        await session.rollback()
        # The same session's next transaction starts clean: only what it commits is announced.
        await notify(
            session, account=carol, from_account=alice, kind=NotificationType.REBLOG, post_id=post.id
        )
        await session.commit()
    assert without_ids(heard) == [NotificationAdded(carol.id, alice.id, NotificationType.REBLOG, post.id)]


async def test_an_entry_already_in_the_timeline_is_not_announced_again(
    instance: Instance, heard: list[Event]
) -> None:
    alice = await local_account(instance, "alice")
    post = await PostingService(instance.context).create(alice, "hello")
    assert heard == [TimelineEntryAdded(alice.id, post.id), PostPublished(post.id, alice.id, local=True)]
    async with instance.context.sessions() as session:
        await add_to_home(session, [alice.id], post.id)
        await session.commit()
    assert heard == [TimelineEntryAdded(alice.id, post.id), PostPublished(post.id, alice.id, local=True)]


async def test_another_instance_hears_nothing(lab: Lab) -> None:
    # Every instance's own kept renderings (app.services.renderings) listen to its bus, so events
    # are always built; they never reach another instance's listeners.
    one = await lab.instance("one.test", public_cache_mb=0)
    two = await lab.instance("two.test")
    heard_on_two: list[Event] = []
    listen(two, heard_on_two)
    alice = await local_account(one, "alice")
    await PostingService(one.context).create(alice, "hello")
    assert heard_on_two == []


async def test_inbox_batches_announce_what_they_add(lab: Lab) -> None:
    """A remote post delivered to a follower (WriteBatch), and a remote like of a local post."""
    here, alice = await home_of_alice(lab)
    heard: list[Event] = []
    listen(here, heard)
    peer = Peer(lab).host("remote.test")
    bob = peer.actor(BOB)
    bob_here = await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    mine = await PostingService(here.context).create(alice, "mine")
    heard.clear()
    for document in [
        create(bob, note(bob, 1, content="<p>from bob</p>")),
        activity(bob, "Like", mine.uri, "likes/1"),
        # Delivered twice: the second is a duplicate and adds nothing.
        create(bob, note(bob, 1, content="<p>from bob</p>")),
    ]:
        assert (await peer.deliver(here, bob, document)).status_code == 202
        await process_inbox(here)
    entries = [item for item in heard if isinstance(item, TimelineEntryAdded)]
    assert [entry.account_id for entry in entries] == [alice.id]
    # The delivered post is announced once (the duplicate adds nothing).
    assert [item for item in heard if isinstance(item, PostPublished)] == [
        PostPublished(entries[0].post_id, bob_here.id, local=False)
    ]
    assert without_ids([item for item in heard if isinstance(item, NotificationAdded)]) == [
        NotificationAdded(alice.id, bob_here.id, NotificationType.FAVOURITE, mine.id)
    ]
    heard.clear()
    assert (
        await peer.deliver(here, bob, activity(bob, "Delete", f"{bob.uri}/statuses/1", "deletes/1"))
    ).status_code == 202
    await process_inbox(here)
    assert heard == [PostDeleted(entries[0].post_id, bob_here.id)]


async def test_a_remote_account_deleting_itself_announces_each_of_its_posts_gone(lab: Lab) -> None:
    here, alice = await home_of_alice(lab)
    heard: list[Event] = []
    listen(here, heard)
    peer = Peer(lab).host("remote.test")
    bob = peer.actor(BOB)
    bob_here = await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    for number in (1, 2):
        assert (await peer.deliver(here, bob, create(bob, note(bob, number)))).status_code == 202
    await process_inbox(here)
    posts = sorted(item.post_id for item in heard if isinstance(item, TimelineEntryAdded))
    assert len(posts) == 2
    heard.clear()
    assert (
        await peer.deliver(here, bob, activity(bob, "Delete", bob.uri, "deletes/self"))
    ).status_code == 202
    await process_inbox(here)
    assert len(heard) == 2 and set(heard) == {PostDeleted(post_id, bob_here.id) for post_id in posts}
