"""Actor documents and their collections, as remote servers fetch them (and browsers visit them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlmodel import select

from app.models import Account, Follow, FollowState, Pin, Post, Visibility
from app.models.base import utcnow
from app.services import events
from app.services.accounts import AccountService, CreatedAccount
from tests.lab import Instance

AS2 = "application/activity+json"
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
ACTOR = "http://a.test/users/alice"
# What each implementation sends when it fetches an actor.
FETCHER_ACCEPTS = {
    "activity+json": "application/activity+json",
    "ld+json with profile": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
    "Mastodon": "application/activity+json, application/ld+json",
    "Pleroma": "application/activity+json",
    "Misskey": 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
}
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
async def alice(instance: Instance) -> CreatedAccount:
    return await AccountService(instance.context).create_local_account("alice", display_name="Alice Example")


async def fetch(instance: Instance, url: str, accept: str = AS2) -> Any:
    response = await instance.client.get(url, headers={"Accept": accept})
    assert response.status_code == 200, (url, response.status_code, response.text)
    assert response.headers["content-type"] == AS2
    return response.json()


async def update_account(instance: Instance, username: str, **values: Any) -> None:
    async with instance.context.sessions() as session:
        account = (await session.scalars(select(Account).where(Account.username == username))).one()
        for name, value in values.items():
            setattr(account, name, value)
        session.add(account)
        # Written behind the services' back, so announced as they would (the public cache listens).
        events.announce(session, [events.AccountChanged(account.id)])
        await session.commit()


def contexts(document: dict[str, Any]) -> list[Any]:
    context = document["@context"]
    return context if isinstance(context, list) else [context]


async def test_fetchers_get_activitystreams(instance: Instance, alice: CreatedAccount) -> None:
    for client, accept in FETCHER_ACCEPTS.items():
        response = await instance.client.get("/users/alice", headers={"Accept": accept})
        assert response.status_code == 200, (client, response.text)
        assert response.headers["content-type"] == AS2, client
        assert "accept" in response.headers["vary"].lower(), client
        document = response.json()
        # Mastodon refuses an actor whose id is not the URL it fetched.
        assert document["id"] == ACTOR, client
        assert document["type"] == "Person", client
    # However the name is spelled in the URL, the id is the canonical one peers store.
    assert (await fetch(instance, "/users/ALICE"))["id"] == ACTOR


async def test_browsers_get_the_profile_page(instance: Instance, alice: CreatedAccount) -> None:
    redirect = await instance.client.get("/users/alice", headers={"Accept": BROWSER})
    assert redirect.status_code in (301, 302, 303, 307, 308)
    assert redirect.headers["location"] == "http://a.test/@alice"
    assert "accept" in redirect.headers["vary"].lower()
    page = await instance.client.get("/users/alice", headers={"Accept": BROWSER}, follow_redirects=True)
    assert page.status_code == 200
    assert str(page.url) == "http://a.test/@alice"
    assert page.headers["content-type"].startswith("text/html")
    assert "accept" in page.headers["vary"].lower()
    assert "Alice Example" in page.text
    assert "@alice@a.test" in page.text
    # The page points fetchers at the actor, and the profile URL sends them there.
    assert f'href="{ACTOR}"' in page.text
    profile = await instance.client.get("/@alice", headers={"Accept": FETCHER_ACCEPTS["Mastodon"]})
    assert profile.status_code in (301, 302, 303, 307, 308)
    assert profile.headers["location"] == ACTOR


async def test_profile_page_escapes_what_the_account_wrote(instance: Instance, alice: CreatedAccount) -> None:
    await update_account(instance, "alice", display_name='<script>alert("x")</script> & Co')
    page = await instance.client.get("/@alice", headers={"Accept": BROWSER})
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;" in page.text


async def test_actor_has_every_field_peers_use(instance: Instance, alice: CreatedAccount) -> None:
    await update_account(
        instance,
        "alice",
        summary_html="<p>Press office</p>",
        fields=[
            {"name": "Website", "value": '<a href="https://example.org">example.org</a>'},
            {"name": "Office hours", "value": "Mo-Fr 9-17"},
        ],
        also_known_as=["https://old.example/users/alice"],
    )
    actor = await fetch(instance, "/users/alice")
    assert AS_CONTEXT in contexts(actor)
    assert SECURITY_CONTEXT in contexts(actor)
    assert actor["id"] == ACTOR
    assert actor["type"] == "Person"
    assert actor["preferredUsername"] == "alice"
    assert actor["name"] == "Alice Example"
    assert actor["summary"] == "<p>Press office</p>"
    assert actor["url"] == "http://a.test/@alice"
    assert actor["inbox"] == f"{ACTOR}/inbox"
    assert actor["outbox"] == f"{ACTOR}/outbox"
    assert actor["followers"] == f"{ACTOR}/followers"
    assert actor["following"] == f"{ACTOR}/following"
    assert actor["featured"] == f"{ACTOR}/collections/featured"
    assert actor["featuredTags"] == f"{ACTOR}/collections/tags"
    assert actor["endpoints"] == {"sharedInbox": "http://a.test/inbox"}
    assert actor["publicKey"]["id"] == f"{ACTOR}#main-key"
    assert actor["publicKey"]["owner"] == ACTOR
    published = datetime.fromisoformat(actor["published"].replace("Z", "+00:00"))
    assert abs((utcnow() - published).total_seconds()) < 120
    assert actor["manuallyApprovesFollowers"] is False
    assert actor["discoverable"] is True
    assert actor["indexable"] is True
    assert actor["attachment"] == [
        {
            "type": "PropertyValue",
            "name": "Website",
            "value": '<a href="https://example.org">example.org</a>',
        },
        {"type": "PropertyValue", "name": "Office hours", "value": "Mo-Fr 9-17"},
    ]
    assert actor["alsoKnownAs"] == ["https://old.example/users/alice"]
    assert actor["webfinger"] == "acct:alice@a.test"
    # The extension terms are defined in the context, so JSON-LD processors keep them.
    terms: dict[str, Any] = {}
    for item in contexts(actor):
        if isinstance(item, dict):
            terms.update(item)
    for term in ("manuallyApprovesFollowers", "discoverable", "featured", "PropertyValue", "alsoKnownAs"):
        assert term in terms, term

    # What the account decides about itself shows up for peers.
    await update_account(
        instance, "alice", manually_approves_followers=True, discoverable=False, indexable=False
    )
    changed = await fetch(instance, "/users/alice")
    assert changed["manuallyApprovesFollowers"] is True
    assert changed["discoverable"] is False
    assert changed["indexable"] is False


async def test_public_key_is_rsa_2048_and_verifies_the_accounts_signatures(
    instance: Instance, alice: CreatedAccount
) -> None:
    actor = await fetch(instance, "/users/alice")
    public_key = serialization.load_pem_public_key(actor["publicKey"]["publicKeyPem"].encode())
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.key_size == 2048
    private_pem = alice.account.private_key_pem
    assert private_pem is not None
    private_key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(private_key, rsa.RSAPrivateKey)
    signed = private_key.sign(b"(request-target): post /inbox", padding.PKCS1v15(), hashes.SHA256())
    public_key.verify(signed, b"(request-target): post /inbox", padding.PKCS1v15(), hashes.SHA256())
    # The private key never leaves the server.
    assert "PRIVATE" not in str(actor)


async def test_organisation_accounts_are_organizations(instance: Instance) -> None:
    await AccountService(instance.context).create_local_account("news", organization=True)
    actor = await fetch(instance, "/users/news")
    assert actor["type"] == "Organization"
    assert actor["id"] == "http://a.test/users/news"
    assert actor["webfinger"] == "acct:news@a.test"


async def test_deleted_account_is_gone(instance: Instance, alice: CreatedAccount) -> None:
    await update_account(instance, "alice", deleted_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    response = await instance.client.get("/users/alice", headers={"Accept": AS2})
    assert response.status_code == 410
    assert response.headers["content-type"] == AS2
    tombstone = response.json()
    assert tombstone["type"] == "Tombstone"
    assert tombstone["id"] == ACTOR
    assert tombstone["formerType"] == "Person"
    # When the account was deleted, the same on every fetch.
    assert tombstone["deleted"] == "2026-01-02T03:04:05Z"
    browser = await instance.client.get("/users/alice", headers={"Accept": BROWSER}, follow_redirects=True)
    assert browser.status_code == 410
    assert browser.headers["content-type"].startswith("text/html")
    assert "Alice Example" not in browser.text
    for collection in ("outbox", "followers", "following", "collections/featured"):
        response = await instance.client.get(f"/users/alice/{collection}", headers={"Accept": AS2})
        assert response.status_code == 410, collection


async def test_unknown_user_is_404_in_the_clients_language(instance: Instance) -> None:
    as2 = await instance.client.get("/users/nobody", headers={"Accept": AS2})
    assert as2.status_code == 404
    assert as2.headers["content-type"].startswith("application/json")
    assert "nobody" in as2.json()["error"]
    browser = await instance.client.get("/users/nobody", headers={"Accept": BROWSER})
    assert browser.status_code == 404
    assert browser.headers["content-type"].startswith("text/html")
    assert "<html" in browser.text.lower()
    profile = await instance.client.get("/@nobody", headers={"Accept": BROWSER})
    assert profile.status_code == 404
    # The instance actor is not a user and is only served at /actor.
    hidden = await instance.client.get("/users/instance.actor", headers={"Accept": AS2})
    assert hidden.status_code == 404


async def test_instance_actor(instance: Instance) -> None:
    for accept in (AS2, FETCHER_ACCEPTS["Mastodon"], None):
        headers = {"Accept": accept} if accept else {}
        # Fetched unsigned: servers that insist on signed fetches first need this key to check ours.
        response = await instance.client.get("/actor", headers=headers)
        assert response.status_code == 200, accept
        assert response.headers["content-type"] == AS2
    actor = response.json()
    assert actor["id"] == "http://a.test/actor"
    assert actor["type"] == "Application"
    assert actor["inbox"]
    assert actor["publicKey"]["id"] == "http://a.test/actor#main-key"
    assert actor["publicKey"]["owner"] == "http://a.test/actor"
    public_key = serialization.load_pem_public_key(actor["publicKey"]["publicKeyPem"].encode())
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert actor["manuallyApprovesFollowers"] is True


# Collections


async def remote_accounts(instance: Instance, count: int, domain: str = "b.test") -> list[Account]:
    accounts = [
        Account(
            username=f"user{number}",
            domain=domain,
            uri=f"http://{domain}/users/user{number}",
            inbox_url=f"http://{domain}/users/user{number}/inbox",
            fetched_at=utcnow(),
        )
        for number in range(count)
    ]
    async with instance.context.sessions() as session:
        session.add_all(accounts)
        await session.commit()
    return accounts


async def add_follows(instance: Instance, pairs: Iterable[tuple[Account, Account, FollowState]]) -> None:
    async with instance.context.sessions() as session:
        for follower, followee, state in pairs:
            session.add(
                Follow(
                    follower_id=follower.id,
                    followee_id=followee.id,
                    state=state,
                    uri=f"{follower.uri}#follows/{followee.id}",
                    accepted_at=utcnow() if state == FollowState.ACCEPTED else None,
                )
            )
        await session.commit()


async def walk(instance: Instance, collection_url: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The collection and every page of it, following `first` and `next` as a peer does."""
    collection = await fetch(instance, collection_url)
    pages = []
    url = collection.get("first")
    while url:
        assert url.startswith("http://a.test/")
        page = await fetch(instance, url.removeprefix("http://a.test"))
        pages.append(page)
        url = page.get("next")
        assert len(pages) < 10
    return collection, pages


async def test_followers_collection_counts_accepted_followers_only(
    instance: Instance, alice: CreatedAccount
) -> None:
    remote = await remote_accounts(instance, 25)
    accepted, pending = remote[:23], remote[23:]
    await add_follows(
        instance,
        [(account, alice.account, FollowState.ACCEPTED) for account in accepted]
        + [(account, alice.account, FollowState.PENDING) for account in pending],
    )
    collection, pages = await walk(instance, "/users/alice/followers")
    assert collection["@context"] == AS_CONTEXT or AS_CONTEXT in contexts(collection)
    assert collection["id"] == f"{ACTOR}/followers"
    assert collection["type"] == "OrderedCollection"
    assert collection["totalItems"] == 23
    assert collection["first"] == f"{ACTOR}/followers?page=1"
    assert len(pages) == 2
    first, second = pages
    assert first["id"] == f"{ACTOR}/followers?page=1"
    assert first["type"] == "OrderedCollectionPage"
    assert first["partOf"] == f"{ACTOR}/followers"
    assert len(first["orderedItems"]) == 20
    assert first["next"] == f"{ACTOR}/followers?page=2"
    assert "prev" not in first
    assert len(second["orderedItems"]) == 3
    assert "next" not in second
    assert second["prev"] == f"{ACTOR}/followers?page=1"
    listed = first["orderedItems"] + second["orderedItems"]
    assert sorted(listed) == sorted(account.uri for account in accepted)


async def test_following_collection(instance: Instance, alice: CreatedAccount) -> None:
    remote = await remote_accounts(instance, 3, domain="c.test")
    await add_follows(
        instance,
        [
            (alice.account, remote[0], FollowState.ACCEPTED),
            (alice.account, remote[1], FollowState.ACCEPTED),
            (alice.account, remote[2], FollowState.PENDING),
        ],
    )
    collection, pages = await walk(instance, "/users/alice/following")
    assert collection["id"] == f"{ACTOR}/following"
    assert collection["type"] == "OrderedCollection"
    assert collection["totalItems"] == 2
    assert len(pages) == 1
    assert pages[0]["partOf"] == f"{ACTOR}/following"
    assert "next" not in pages[0]
    assert sorted(pages[0]["orderedItems"]) == sorted([remote[0].uri, remote[1].uri])
    # Following someone does not make them a follower.
    followers, _ = await walk(instance, "/users/alice/followers")
    assert followers["totalItems"] == 0


async def add_posts(
    instance: Instance, author: Account, specs: Sequence[tuple[str, str, bool]]
) -> list[Post]:
    """(content, visibility, deleted) → Post rows by `author`, oldest first."""
    posts = []
    async with instance.context.sessions() as session:
        for number, (content, visibility, deleted) in enumerate(specs):
            uri = f"{author.uri}/statuses/{number + 1}"
            public = "https://www.w3.org/ns/activitystreams#Public"
            followers = author.followers_url or ""
            post = Post(
                id=1_000_000 + number,
                uri=uri,
                url=f"http://a.test/@{author.username}/{number + 1}",
                account_id=author.id,
                local=True,
                visibility=visibility,
                content_html=f"<p>{content}</p>",
                to=[public] if visibility == Visibility.PUBLIC else [followers],
                cc=[followers] if visibility == Visibility.PUBLIC else [],
                deleted_at=utcnow() if deleted else None,
            )
            session.add(post)
            posts.append(post)
        await session.commit()
    return posts


async def test_outbox_lists_public_posts_as_creates(instance: Instance, alice: CreatedAccount) -> None:
    specs = [(f"public {number}", Visibility.PUBLIC, False) for number in range(21)]
    specs += [
        ("unlisted one", Visibility.UNLISTED, False),
        ("for followers only", Visibility.FOLLOWERS, False),
        ("a direct message", Visibility.DIRECT, False),
        ("deleted one", Visibility.PUBLIC, True),
    ]
    await add_posts(instance, alice.account, specs)
    collection, pages = await walk(instance, "/users/alice/outbox")
    assert collection["id"] == f"{ACTOR}/outbox"
    assert collection["type"] == "OrderedCollection"
    assert collection["totalItems"] == 22
    assert [len(page["orderedItems"]) for page in pages] == [20, 2]
    assert pages[0]["next"] == f"{ACTOR}/outbox?page=2"
    assert all(page["partOf"] == f"{ACTOR}/outbox" for page in pages)
    items = [item for page in pages for item in page["orderedItems"]]
    contents = [item["object"]["content"] for item in items]
    # Newest first.
    assert contents[0] == "<p>unlisted one</p>"
    assert contents[-1] == "<p>public 0</p>"
    assert "<p>for followers only</p>" not in contents
    assert "<p>a direct message</p>" not in contents
    assert "<p>deleted one</p>" not in contents
    create = items[-1]
    assert create["type"] == "Create"
    assert create["actor"] == ACTOR
    assert create["id"] == f"{ACTOR}/statuses/1/activity"
    note = create["object"]
    assert note["type"] == "Note"
    assert note["id"] == f"{ACTOR}/statuses/1"
    assert note["attributedTo"] == ACTOR
    assert note["to"] == ["https://www.w3.org/ns/activitystreams#Public"]
    assert note["cc"] == [f"{ACTOR}/followers"]


async def test_featured_collection_holds_the_pinned_posts(instance: Instance, alice: CreatedAccount) -> None:
    posts = await add_posts(
        instance,
        alice.account,
        [
            ("first", Visibility.PUBLIC, False),
            ("pinned", Visibility.PUBLIC, False),
            ("also pinned", "public", False),
        ],
    )
    async with instance.context.sessions() as session:
        session.add(Pin(account_id=alice.account.id, post_id=posts[1].id))
        session.add(Pin(account_id=alice.account.id, post_id=posts[2].id))
        await session.commit()
    featured = await fetch(instance, "/users/alice/collections/featured")
    assert featured["id"] == f"{ACTOR}/collections/featured"
    assert featured["type"] == "OrderedCollection"
    assert featured["totalItems"] == 2
    # Mastodon reads the pinned posts inline, as it serves them itself.
    assert sorted(note["id"] for note in featured["orderedItems"]) == sorted([posts[1].uri, posts[2].uri])
    assert all(note["type"] == "Note" and note["attributedTo"] == ACTOR for note in featured["orderedItems"])


async def test_empty_collections_and_bad_requests(instance: Instance, alice: CreatedAccount) -> None:
    for name in ("followers", "following", "outbox"):
        collection, pages = await walk(instance, f"/users/alice/{name}")
        assert collection["totalItems"] == 0, name
        assert [page["orderedItems"] for page in pages] == [[]], name
    featured = await fetch(instance, "/users/alice/collections/featured")
    assert (featured["totalItems"], featured["orderedItems"]) == (0, [])
    tags = await fetch(instance, "/users/alice/collections/tags")
    assert tags["id"] == f"{ACTOR}/collections/tags"
    assert tags["totalItems"] == 0

    for page in ("abc", "0", "-1", "1.5", ""):
        response = await instance.client.get(f"/users/alice/followers?page={page}", headers={"Accept": AS2})
        assert response.status_code == 400, page
        assert "page" in response.json()["error"], page

    for name in ("followers", "following", "outbox", "collections/featured", "collections/tags"):
        response = await instance.client.get(f"/users/nobody/{name}", headers={"Accept": AS2})
        assert response.status_code == 404, name
