"""The read model: a page of posts into views, with what each carries, in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlmodel import col, select

from app.models import MediaAttachment, Poll, Post, Role
from app.services.posting import PostingService
from app.services.read_model import load_views
from app.services.staff import StaffService
from app.services.viewer import Viewer, person_viewer
from tests.lab import Instance, Lab
from tests.web.helpers import make_user


@pytest.fixture
async def instance(lab: Lab) -> Instance:
    """Without the embedded worker: its polling would be counted with the page's statements."""
    return await lab.instance("a.test", embedded_worker=False)


@contextmanager
def counted_statements(instance: Instance) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = instance.context.engine.sync_engine

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_views_carry_everything_and_cost_the_same_queries_whatever_the_page_size(
    instance: Instance,
) -> None:
    context = instance.context
    admin_user, _admin = await make_user(instance, "root", role=Role.ADMIN)
    member, alice = await make_user(instance, "alice")
    _bob_user, bob = await make_user(instance, "bob")
    _org_user, org = await make_user(instance, "knnktv", organization=True)
    await StaffService(context).grant_delegate(org.id, member.id, by=admin_user)
    as_alice = PostingService(context, await person_viewer(context, member, alice))
    posting = PostingService(context)

    posts: list[Post] = []
    for number in range(12):
        post = await as_alice.create(org, f"Number {number} for @bob #count")
        posts.append(post)
        posts.append(await posting.boost(bob, post.id))
    await as_alice.like(alice, posts[0].id)
    await as_alice.boost(alice, posts[0].id)
    await as_alice.pin(org, posts[0].id)
    async with context.sessions() as session:
        for post in posts[::2]:
            session.add(
                MediaAttachment(post_id=post.id, account_id=org.id, media_type="image/png", url="/m.png")
            )
            session.add(Poll(post_id=post.id, options=[{"title": "yes", "votes": 1}]))
        await session.commit()
        newest = list(
            (await session.scalars(select(Post).where(col(Post.id).in_([p.id for p in posts])))).all()
        )
    newest.sort(key=lambda post: post.id, reverse=True)

    viewer = await person_viewer(context, member, alice)
    counts = []
    for size in (2, 24):
        with counted_statements(instance) as statements:
            views = await load_views(context, newest[:size], viewer)
        assert len(views) == size
        counts.append(len(statements))
    assert counts[0] == counts[1] <= 10, counts

    views = await load_views(context, newest, viewer)
    by_item = {view.item.id: view for view in views}
    first, boost_of_first = posts[0], posts[1]
    view = by_item[first.id]
    assert view.author.id == org.id and view.boosted_by is None
    assert [account.id for account in view.mentions] == [bob.id] and view.tags == ["count"]
    assert [item.url for item in view.media] == ["/m.png"] and view.poll is not None
    assert view.liked and view.boosted and view.pinned and view.may_edit
    assert view.written_by is not None and view.written_by.id == alice.id
    boosted = by_item[boost_of_first.id]
    assert boosted.post.id == first.id and boosted.boosted_by is not None and boosted.boosted_by.id == bob.id

    # A visitor sees the same posts, without the marks or who wrote them.
    anonymous = {view.item.id: view for view in await load_views(context, newest, Viewer.nobody())}
    view = anonymous[first.id]
    assert not (view.liked or view.boosted or view.may_edit) and view.pinned and view.written_by is None
