"""The public cache (app.public_cache): anonymous readers get ready answers, never stale ones after
an edit or a delete, and nobody gets an answer made for someone else."""

from __future__ import annotations

import asyncio

import pytest

from app.activitypub.fetcher import Fetcher, FetchError
from app.models import Visibility
from app.public_cache import PublicCache, post_tag
from app.services.account_moderation import AccountModerationService
from app.services.accounts import AccountService
from app.services.domain_blocks import DomainBlockService
from app.services.following import FollowingService
from app.services.posting import PostingService
from app.services.profile_settings import ProfileChanges, ProfileSettingsService
from tests.federation.delivery_helpers import local_account, settle
from tests.lab import Instance, Lab
from tests.web.helpers import BROWSER, logged_in, make_user

AS2 = {"Accept": "application/activity+json"}


async def read_everywhere(instance: Instance, post_id: int) -> dict[str, str]:
    """What an anonymous reader sees of alice and her post, each read twice (the second from the
    cache), keyed by where."""
    client = instance.client
    places = {
        "note": (f"/users/alice/statuses/{post_id}", AS2),
        "post page": (f"/@alice/{post_id}", BROWSER),
        "profile": ("/@alice", BROWSER),
        "outbox": ("/users/alice/outbox?page=1", AS2),
        "featured": ("/users/alice/collections/featured", AS2),
        "rss": ("/@alice/feed.rss", {}),
        "atom": ("/@alice/feed.atom", {}),
        "tag": ("/tags/garden", BROWSER),
    }
    seen = {}
    for name, (path, headers) in places.items():
        first = await client.get(path, headers=headers)
        second = await client.get(path, headers=headers)
        assert first.status_code == second.status_code, name
        assert first.content == second.content, name
        seen[name] = f"{second.status_code} {second.text}"
    return seen


async def test_an_edit_and_a_delete_are_seen_by_the_very_next_anonymous_get(instance: Instance) -> None:
    _user, alice = await make_user(instance, "alice")
    posting = PostingService(instance.context)
    post = await posting.create(alice, "The first version #garden")
    await posting.pin(alice, post.id)
    cache = instance.context.public_cache

    before = await read_everywhere(instance, post.id)
    for name, text in before.items():
        assert text.startswith("200") and "The first version" in text, name
    # Each second read was a hit: nothing read the database for it.
    assert cache.counts.hits >= len(before)

    await posting.edit(alice, post.id, "The corrected version #garden")
    edited = await read_everywhere(instance, post.id)
    for name, text in edited.items():
        assert "The first version" not in text, name
        assert "The corrected version" in text, name

    await posting.delete(alice, post.id)
    deleted = await read_everywhere(instance, post.id)
    assert deleted["note"].startswith("410")
    assert deleted["post page"].startswith("404")
    for name, text in deleted.items():
        assert "The corrected version" not in text, name


async def test_a_new_post_a_profile_change_and_an_unpin_are_seen_at_once(instance: Instance) -> None:
    _user, alice = await make_user(instance, "alice")
    posting = PostingService(instance.context)
    first = await posting.create(alice, "Old news")
    await posting.pin(alice, first.id)
    for path, headers in (("/@alice", BROWSER), ("/users/alice", AS2), ("/users/alice/outbox?page=1", AS2)):
        await instance.client.get(path, headers=headers)

    await posting.create(alice, "Fresh news")
    await ProfileSettingsService(instance.context).update(
        alice.id, ProfileChanges(display_name="Alice Renamed", bio="", fields=[])
    )
    assert "Fresh news" in (await instance.client.get("/@alice", headers=BROWSER)).text
    assert "Fresh news" in (await instance.client.get("/users/alice/outbox?page=1", headers=AS2)).text
    assert (await instance.client.get("/users/alice", headers=AS2)).json()["name"] == "Alice Renamed"
    assert "Alice Renamed" in (await instance.client.get("/@alice", headers=BROWSER)).text

    featured = (await instance.client.get("/users/alice/collections/featured", headers=AS2)).json()
    assert featured["totalItems"] == 1
    await posting.unpin(alice, first.id)
    featured = (await instance.client.get("/users/alice/collections/featured", headers=AS2)).json()
    assert featured["totalItems"] == 0


async def test_etag_and_304_and_cache_control_for_anonymous_readers(instance: Instance) -> None:
    _user, alice = await make_user(instance, "alice")
    posting = PostingService(instance.context)
    post = await posting.create(alice, "Conditional")
    for path, headers in ((f"/users/alice/statuses/{post.id}", AS2), (f"/@alice/{post.id}", BROWSER)):
        first = await instance.client.get(path, headers=headers)
        etag = first.headers["etag"]
        assert first.headers["cache-control"].startswith("public, max-age=")
        assert "Accept" in first.headers["vary"]
        again = await instance.client.get(path, headers={**headers, "If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        assert (
            await instance.client.get(path, headers={**headers, "If-None-Match": '"other"'})
        ).status_code == 200
    etag = (await instance.client.get(f"/users/alice/statuses/{post.id}", headers=AS2)).headers["etag"]
    await posting.edit(alice, post.id, "Conditional, edited")
    changed = await instance.client.get(
        f"/users/alice/statuses/{post.id}", headers={**AS2, "If-None-Match": etag}
    )
    assert changed.status_code == 200 and changed.headers["etag"] != etag


async def test_content_negotiation_and_language_are_kept_apart(instance: Instance) -> None:
    _user, alice = await make_user(instance, "alice")
    post = await PostingService(instance.context).create(alice, "Negotiated")
    client = instance.client
    for _ in range(2):
        assert (await client.get("/users/alice", headers=AS2)).json()["type"] == "Person"
        assert (await client.get("/users/alice", headers=BROWSER)).status_code == 302
        note = await client.get(f"/users/alice/statuses/{post.id}", headers=AS2)
        assert note.json()["type"] == "Note"
        page = await client.get(f"/@alice/{post.id}", headers=BROWSER)
        assert page.headers["content-type"].startswith("text/html")
        assert (await client.get(f"/@alice/{post.id}", headers=AS2)).status_code == 302
    german = await client.get("/@alice", headers={**BROWSER, "Accept-Language": "de"})
    english = await client.get("/@alice", headers={**BROWSER, "Accept-Language": "en"})
    german_again = await client.get("/@alice", headers={**BROWSER, "Accept-Language": "de-DE,de;q=0.9"})
    assert german.text != english.text
    assert german_again.text == german.text
    assert 'lang="de"' in german.text and 'lang="en"' in english.text
    assert "Accept-Language" in german.headers["vary"]


async def test_a_logged_in_reader_never_gets_or_leaves_a_cached_page(instance: Instance) -> None:
    _user, alice = await make_user(instance, "alice")
    post = await PostingService(instance.context).create(alice, "Seen by all")
    staff = await logged_in(instance, "bob")
    try:
        for path in ("/@alice", f"/@alice/{post.id}"):
            mine = await staff.get(path)
            assert mine.headers["cache-control"] == "private, no-store"
            assert "/logout" in mine.text
            anonymous = await instance.client.get(path, headers=BROWSER)
            assert "/logout" not in anonymous.text
            # Now kept for visitors; the staff member still gets their own page.
            await instance.client.get(path, headers=BROWSER)
            mine_again = await staff.get(path)
            assert "/logout" in mine_again.text and "etag" not in mine_again.headers
    finally:
        await staff.aclose()
    # An API client's bearer token: its answers are private, and not taken from the cache.
    api = await instance.client.get("/users/alice", headers={**AS2, "Authorization": "Bearer nothing"})
    assert api.headers["cache-control"] == "private" and "etag" not in api.headers


async def test_followers_only_posts_go_to_their_followers_only(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    bob = await local_account(b, "bob")
    await FollowingService(b.context).follow(bob, "@alice@a.test")
    await settle(lab)
    secret = await PostingService(a.context).create(alice, "For followers", visibility=Visibility.FOLLOWERS)
    follower = Fetcher(b.context, signer=bob)
    for _ in range(2):
        assert (await follower.get_json(secret.uri, signed=True))["content"]
        assert (await a.client.get(secret.uri.removeprefix(a.base_url), headers=AS2)).status_code == 404
        stranger = Fetcher(b.context, signer=await AccountService(b.context).instance_actor())
        with pytest.raises(FetchError) as refused:
            await stranger.get_json(secret.uri, signed=True)
        assert refused.value.status == 404
    assert all(post_tag(secret.id) not in entry.tags for entry in a.context.public_cache._entries.values())


async def test_under_authorized_fetch_a_signed_reader_is_never_served_from_the_cache(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False, authorized_fetch=True)
    b = await lab.instance("b.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    signed = Fetcher(b.context, signer=await AccountService(b.context).instance_actor())
    for _ in range(2):
        minimal = (await a.client.get("/users/alice", headers=AS2)).json()
        assert "name" not in minimal and minimal["publicKey"]
        assert (await signed.get_json(alice.uri, signed=True))["name"] == alice.display_name
    # A blocked domain is refused, whatever was kept for others.
    await DomainBlockService(a.context).block("b.test")
    with pytest.raises(FetchError) as refused:
        await signed.get_json(alice.uri, signed=True)
    assert refused.value.status == 403


async def test_without_authorized_fetch_a_blocked_signer_is_refused_despite_the_cache(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    post = await PostingService(a.context).create(alice, "Public")
    signed = Fetcher(b.context, signer=await AccountService(b.context).instance_actor())
    for _ in range(2):
        assert await signed.get_json(post.uri, signed=True)
    await DomainBlockService(a.context).block("b.test")
    await a.client.get(post.uri.removeprefix(a.base_url), headers=AS2)  # kept again for anonymous readers
    with pytest.raises(FetchError) as refused:
        await signed.get_json(post.uri, signed=True)
    assert refused.value.status == 403


def test_an_answer_begun_before_an_invalidation_is_not_kept() -> None:
    cache = PublicCache(limit_bytes=1 << 20)
    ticket = cache.ticket()
    cache.invalidate([post_tag(1)])
    kept = cache.put(
        "key",
        ticket,
        status=200,
        headers=[],
        body=b"old",
        etag=b'"1"',
        tags=frozenset({post_tag(1)}),
        seconds=60,
    )
    assert not kept and cache.get("key") is None
    # Another post's invalidation does not spoil it.
    ticket = cache.ticket()
    cache.invalidate([post_tag(2)])
    assert cache.put(
        "key",
        ticket,
        status=200,
        headers=[],
        body=b"new",
        etag=b'"2"',
        tags=frozenset({post_tag(1)}),
        seconds=60,
    )


def test_the_cache_stays_within_its_memory() -> None:
    now = [0.0]
    cache = PublicCache(limit_bytes=64 * 1024, clock=lambda: now[0])
    for number in range(200):
        cache.put(
            number,
            cache.ticket(),
            status=200,
            headers=[],
            body=b"x" * 1000,
            etag=b'"x"',
            tags=frozenset({post_tag(number)}),
            seconds=10,
        )
    assert cache.size_bytes <= 64 * 1024
    assert cache.get(199) is not None and cache.get(0) is None
    now[0] = 11.0
    assert cache.get(199) is None


async def test_a_blocked_account_drops_what_was_kept(instance: Instance) -> None:
    _user, alice = await make_user(instance, "alice")
    await PostingService(instance.context).create(alice, "Anything")
    await instance.client.get("/@alice", headers=BROWSER)
    assert len(instance.context.public_cache) > 0
    _user, mallory = await make_user(instance, "mallory")
    await AccountModerationService(instance.context).block(alice, mallory)
    assert len(instance.context.public_cache) == 0


async def test_a_stampede_of_first_readers_makes_the_answer_once(instance: Instance) -> None:
    _user, alice = await make_user(instance, "alice")
    post = await PostingService(instance.context).create(alice, "Going viral")
    answers = await asyncio.gather(
        *(instance.client.get(f"/users/alice/statuses/{post.id}", headers=AS2) for _ in range(20))
    )
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.content for answer in answers}) == 1
    assert instance.context.public_cache.counts.stored == 1
