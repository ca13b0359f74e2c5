"""The federation lab's first conversation: instances finding each other's accounts over real HTTP.

Every request here goes through the lab network (`lab.network`), exactly as it would between two
machines: WebFinger on one side, the actor document on the other, and the resolver in between.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from sqlmodel import select

from app.activitypub.resolver import ActorResolver, ResolveError
from app.models import Account
from app.services import events
from app.services.accounts import AccountService
from tests.lab import Instance, Lab

AS2 = "application/activity+json"


async def served_actor(instance: Instance, username: str) -> dict[str, Any]:
    response = await instance.client.get(f"/users/{username}", headers={"Accept": AS2})
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def assert_matches(account: Account, served: dict[str, Any]) -> None:
    """The cached account says what the other server serves."""
    assert account.uri == served["id"]
    assert account.is_local is False
    assert account.actor_type == served["type"]
    assert account.username == served["preferredUsername"]
    assert account.display_name == served["name"]
    assert account.url == served["url"]
    assert account.inbox_url == served["inbox"]
    assert account.shared_inbox_url == served["endpoints"]["sharedInbox"]
    assert account.outbox_url == served["outbox"]
    assert account.followers_url == served["followers"]
    assert account.following_url == served["following"]
    assert account.key_id == served["publicKey"]["id"]
    assert account.public_key_pem == served["publicKey"]["publicKeyPem"]
    assert account.private_key_pem is None


@pytest.fixture
async def pair(lab: Lab) -> tuple[Instance, Instance]:
    a = await lab.instance("a.test")
    b = await lab.instance("b.test")
    await AccountService(a.context).create_local_account("alice", display_name="Alice at A")
    await AccountService(b.context).create_local_account("bob", display_name="Bob at B")
    return a, b


async def test_a_and_b_find_each_other(lab: Lab, pair: tuple[Instance, Instance]) -> None:
    a, b = pair
    # Our own accounts need no network.
    alice_at_home = await ActorResolver(a.context).resolve_handle("@alice@a.test")
    assert alice_at_home.is_local
    assert lab.network.requests == []

    bob = await ActorResolver(a.context).resolve_handle("@bob@b.test")
    assert bob.uri == "http://b.test/users/bob"
    assert bob.domain == "b.test"
    assert bob.handle(a.settings.local_domain) == "bob@b.test"
    assert bob.inbox_url == "http://b.test/users/bob/inbox"
    assert bob.shared_inbox_url == "http://b.test/inbox"
    assert bob.display_name == "Bob at B"
    assert_matches(bob, await served_actor(b, "bob"))
    # Both discovery steps crossed the network to b.test.
    paths = [(request.url.host, request.url.path) for request in lab.network.requests]
    assert ("b.test", "/.well-known/webfinger") in paths
    assert ("b.test", "/users/bob") in paths

    alice = await ActorResolver(b.context).resolve_handle("alice@a.test")
    assert alice.uri == "http://a.test/users/alice"
    assert alice.display_name == "Alice at A"
    assert alice.inbox_url == "http://a.test/users/alice/inbox"
    assert alice.shared_inbox_url == "http://a.test/inbox"
    assert_matches(alice, await served_actor(a, "alice"))


async def test_second_resolve_is_served_from_the_cache(lab: Lab, pair: tuple[Instance, Instance]) -> None:
    a, _ = pair
    resolver = ActorResolver(a.context)
    first = await resolver.resolve_handle("@bob@b.test")
    made = len(lab.network.requests)
    assert made >= 2
    again = await resolver.resolve_handle("@bob@b.test")
    same_by_url = await resolver.resolve("http://b.test/users/bob")
    differently_spelled = await resolver.resolve_handle("acct:Bob@B.TEST")
    assert len(lab.network.requests) == made
    assert again.id == first.id == same_by_url.id == differently_spelled.id


async def test_refresh_fetches_again(lab: Lab, pair: tuple[Instance, Instance]) -> None:
    a, b = pair
    resolver = ActorResolver(a.context)
    await resolver.resolve_handle("@bob@b.test")
    # Bob renames himself on b.test; a.test learns it when it refreshes.
    async with b.context.sessions() as session:
        row = (await session.scalars(select(Account).where(Account.username == "bob"))).one()
        row.display_name = "Robert"
        session.add(row)
        # As the profile settings do: b.test's public cache drops its copy of the actor.
        events.announce(session, [events.AccountChanged(row.id)])
        await session.commit()
    made = len(lab.network.requests)
    refreshed = await resolver.resolve_handle("@bob@b.test", refresh=True)
    assert len(lab.network.requests) > made
    assert refreshed.display_name == "Robert"
    assert (await resolver.resolve_handle("@bob@b.test")).display_name == "Robert"


async def test_what_cannot_be_found_is_a_resolve_error(pair: tuple[Instance, Instance]) -> None:
    a, _ = pair
    resolver = ActorResolver(a.context)
    with pytest.raises(ResolveError, match=r"nobody@b\.test"):
        await resolver.resolve_handle("@nobody@b.test")
    with pytest.raises(ResolveError):
        await resolver.resolve("http://b.test/users/nobody")
    with pytest.raises(ResolveError, match=r"nowhere\.test"):
        await resolver.resolve_handle("@someone@nowhere.test")
    for handle in ("bob", "@bob", "bob@", "@bob@b.test/users", "bob@b test"):
        with pytest.raises(ResolveError):
            await resolver.resolve_handle(handle)


async def test_resolving_by_url(lab: Lab, pair: tuple[Instance, Instance]) -> None:
    a, b = pair
    bob = await ActorResolver(a.context).resolve("http://b.test/users/bob")
    assert bob.uri == "http://b.test/users/bob"
    assert_matches(bob, await served_actor(b, "bob"))
    # A URL needs no WebFinger. (The fetch is signed, so b.test reads our instance actor's key.)
    assert [request.url.path for request in lab.network.requests if request.url.host == "b.test"] == [
        "/users/bob"
    ]
    assert {request.url.path for request in lab.network.requests if request.url.host == "a.test"} <= {
        "/actor"
    }
    # And the handle then finds the same account.
    assert (await ActorResolver(a.context).resolve_handle("@bob@b.test")).id == bob.id


async def test_domain_with_a_port(lab: Lab) -> None:
    a = await lab.instance("a.test")
    ported = await lab.instance("127.0.0.2:9100")
    await AccountService(ported.context).create_local_account("carol")
    carol = await ActorResolver(a.context).resolve_handle("@carol@127.0.0.2:9100")
    assert carol.uri == "http://127.0.0.2:9100/users/carol"
    assert carol.domain == "127.0.0.2:9100"
    assert carol.handle(a.settings.local_domain) == "carol@127.0.0.2:9100"
    assert_matches(carol, await served_actor(ported, "carol"))


def evil_app() -> FastAPI:
    """A server that serves actor documents claiming to be someone else."""
    app = FastAPI()

    @app.get("/.well-known/webfinger")
    async def webfinger(resource: str) -> JSONResponse:
        username = resource.removeprefix("acct:").split("@", 1)[0]
        return JSONResponse(
            {
                "subject": resource,
                "links": [{"rel": "self", "type": AS2, "href": f"http://evil.test/users/{username}"}],
            },
            media_type="application/jrd+json",
        )

    @app.get("/users/{username}")
    async def actor(username: str) -> JSONResponse:
        # Claims to be bob on b.test, with the attacker's own key and inbox.
        return JSONResponse(
            {
                "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
                "id": "http://b.test/users/bob",
                "type": "Person",
                "preferredUsername": "bob",
                "name": "Bob (really)",
                "inbox": "http://b.test/users/bob/inbox",
                "publicKey": {
                    "id": "http://b.test/users/bob#main-key",
                    "owner": "http://b.test/users/bob",
                    "publicKeyPem": "-----BEGIN PUBLIC KEY-----\nattacker\n-----END PUBLIC KEY-----\n",
                },
            },
            media_type=AS2,
        )

    return app


async def test_actor_whose_id_is_not_the_url_fetched_is_refused(
    lab: Lab, pair: tuple[Instance, Instance]
) -> None:
    a, b = pair
    lab.network.register("evil.test", evil_app())
    resolver = ActorResolver(a.context)
    # Before the real bob is known...
    with pytest.raises(ResolveError, match=r"evil\.test/users/bob"):
        await resolver.resolve("http://evil.test/users/bob")
    assert await resolver.cached_actor("http://b.test/users/bob") is None

    # ...and after.
    real_bob = await resolver.resolve_handle("@bob@b.test")
    with pytest.raises(ResolveError, match=r"evil\.test/users/mallory"):
        await resolver.resolve("http://evil.test/users/mallory")
    with pytest.raises(ResolveError):
        await resolver.resolve_handle("@mallory@evil.test")
    # Nothing the impostor said was stored: bob's cached key is still the one b.test serves.
    cached = await resolver.cached_actor("http://b.test/users/bob")
    assert cached is not None
    assert cached.id == real_bob.id
    assert cached.display_name == "Bob at B"
    assert cached.public_key_pem == (await served_actor(b, "bob"))["publicKey"]["publicKeyPem"]
    assert await resolver.cached_actor("http://evil.test/users/mallory") is None


# Regressions: each of these was a bug once.


async def test_underscore_in_a_name_is_not_a_wildcard(lab: Lab, pair: tuple[Instance, Instance]) -> None:
    a, b = pair
    await AccountService(b.context).create_local_account("axb", display_name="Someone else")
    await AccountService(b.context).create_local_account("a_b", display_name="The one asked for")
    resolver = ActorResolver(a.context)
    await resolver.resolve_handle("@axb@b.test")
    # Mentioning or following @a_b@b.test must reach a_b, not whoever was cached first.
    assert (await resolver.resolve_handle("@a_b@b.test")).uri == "http://b.test/users/a_b"


async def test_handles_on_a_split_domain_instance(lab: Lab) -> None:
    """@carol@org.test, served from social.org.test: the handle is what people type, and it is cached."""
    a = await lab.instance("a.test")
    split = await lab.instance("org.test", web_domain="social.org.test")
    # org.test answers discovery by redirecting to social.org.test, as its web server is set up to.
    lab.network.register("org.test", split.app)
    await AccountService(split.context).create_local_account("carol")
    resolver = ActorResolver(a.context)
    carol = await resolver.resolve_handle("@carol@org.test")
    assert carol.uri == "http://social.org.test/users/carol"
    made = len(lab.network.requests)
    again = await resolver.resolve_handle("@carol@org.test")
    assert again.id == carol.id
    assert carol.handle(a.settings.local_domain) == "carol@org.test"
    assert len(lab.network.requests) == made


async def test_redirect_to_another_host_cannot_speak_for_the_first(lab: Lab) -> None:
    """An open redirect on a victim's host must not let another host serve actors in its name."""
    a = await lab.instance("a.test")
    victim = FastAPI()

    @victim.get("/go")
    async def go(to: str) -> RedirectResponse:
        return RedirectResponse(to, status_code=302)

    forger = FastAPI()
    forged_id = "http://victim.test/go?to=http://evil.test/forged"

    @forger.get("/forged")
    async def forged() -> JSONResponse:
        document = {
            "id": forged_id,
            "type": "Person",
            "preferredUsername": "ceo",
            "inbox": "http://victim.test/inbox",
        }
        return JSONResponse(document, media_type=AS2)

    lab.network.register("victim.test", victim)
    lab.network.register("evil.test", forger)
    resolver = ActorResolver(a.context)
    with pytest.raises(ResolveError):
        await resolver.resolve(forged_id)
    assert await resolver.cached_actor(forged_id) is None
