"""Nothing a visitor may not see at a post's own URL appears anywhere else for that visitor.

A followers-only post, even pinned, tagged, replied into a public thread or boosted into view,
stays out of every list a visitor (or a logged-in stranger) can read: the featured and outbox
collections, the profile page (which public caches keep), the feeds, hashtag and thread pages.
"""

from __future__ import annotations

import pytest

from app.models import Account, Visibility
from app.services.following import FollowingService
from app.services.posting import PostingService
from tests.lab import Instance
from tests.web.helpers import BROWSER, logged_in, make_user

AS2 = {"Accept": "application/activity+json"}
SECRET = "Secret plans for the followers"


@pytest.fixture
async def alice(instance: Instance) -> Account:
    """alice, with a public post and a followers-only post that she pinned, tagged and replied with."""
    _user, alice = await make_user(instance, "alice")
    posting = PostingService(instance.context)
    public = await posting.create(alice, "Hello world #garden")
    hidden = await posting.create(alice, f"{SECRET} #garden", visibility=Visibility.FOLLOWERS)
    await posting.create(
        alice, f"{SECRET}, in reply", visibility=Visibility.FOLLOWERS, in_reply_to=str(public.id)
    )
    await posting.pin(alice, hidden.id)
    await posting.pin(alice, public.id)
    return alice


async def test_the_post_itself_is_not_found_for_a_visitor(instance: Instance, alice: Account) -> None:
    hidden = await _hidden_post_id(instance, alice)
    assert (await instance.client.get(f"/@alice/{hidden}", headers=BROWSER)).status_code == 404
    assert (await instance.client.get(f"/users/alice/statuses/{hidden}", headers=AS2)).status_code == 404


async def test_the_featured_collection_leaves_it_out(instance: Instance, alice: Account) -> None:
    featured = await instance.client.get("/users/alice/collections/featured", headers=AS2)
    assert featured.status_code == 200
    assert SECRET not in featured.text
    document = featured.json()
    assert document["totalItems"] == 1
    assert [item["content"] for item in document["orderedItems"]] == [
        item["content"] for item in document["orderedItems"] if "Hello world" in item["content"]
    ]


async def test_the_public_profile_page_and_what_caches_keep_leave_it_out(
    instance: Instance, alice: Account
) -> None:
    page = await instance.client.get("/@alice", headers=BROWSER)
    assert page.status_code == 200
    assert "Hello world" in page.text
    assert SECRET not in page.text
    # This is the version public caches keep for a minute, for every visitor.
    assert page.headers["cache-control"] == "public, max-age=60"
    stranger = await logged_in(instance, "mallory")
    try:
        seen = await stranger.get("/@alice")
        assert seen.status_code == 200 and SECRET not in seen.text
    finally:
        await stranger.aclose()


async def test_a_follower_sees_it_on_the_profile_and_that_page_is_never_cached(
    instance: Instance, alice: Account
) -> None:
    follower = await logged_in(instance, "bob")
    try:
        bob = await PostingService(instance.context).local_account("bob")
        await FollowingService(instance.context).follow(bob, "alice@a.test")
        page = await follower.get("/@alice")
        assert page.status_code == 200 and SECRET in page.text
        assert page.headers["cache-control"] == "private, no-store"
        hidden = await _hidden_post_id(instance, alice)
        assert (await follower.get(f"/posts/{hidden}")).status_code == 200
    finally:
        await follower.aclose()


async def test_outbox_feeds_tags_and_threads_leave_it_out(instance: Instance, alice: Account) -> None:
    outbox = await instance.client.get("/users/alice/outbox?page=1", headers=AS2)
    assert outbox.status_code == 200 and "Hello world" in outbox.text and SECRET not in outbox.text
    for path in ("/@alice/feed.rss", "/@alice/feed.atom", "/tags/garden"):
        response = await instance.client.get(path, headers=BROWSER)
        assert response.status_code == 200, path
        assert SECRET not in response.text, path
    public = await _public_post_id(instance, alice)
    thread = await instance.client.get(f"/@alice/{public}", headers=BROWSER)
    assert thread.status_code == 200 and "Hello world" in thread.text and SECRET not in thread.text


async def test_staff_lists_leave_it_out_for_a_non_follower(instance: Instance, alice: Account) -> None:
    stranger = await logged_in(instance, "mallory")
    try:
        public = await _public_post_id(instance, alice)
        for path in (f"/posts/{public}", "/local", "/tags/garden", "/search?q=alice", "/@alice"):
            response = await stranger.get(path)
            assert response.status_code == 200, path
            assert SECRET not in response.text, path
        hidden = await _hidden_post_id(instance, alice)
        assert (await stranger.get(f"/posts/{hidden}")).status_code == 404
    finally:
        await stranger.aclose()


async def _public_post_id(instance: Instance, alice: Account) -> int:
    return await _post_id(instance, alice, "Hello world")


async def _hidden_post_id(instance: Instance, alice: Account) -> int:
    return await _post_id(instance, alice, SECRET + " ")


async def _post_id(instance: Instance, alice: Account, text: str) -> int:
    from sqlmodel import col, select

    from app.models import Post

    async with instance.context.sessions() as session:
        found = await session.scalar(
            select(Post.id).where(Post.account_id == alice.id, col(Post.content_source).startswith(text))
        )
    assert found is not None
    return int(found)
