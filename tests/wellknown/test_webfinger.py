"""WebFinger: how every other server turns @user@domain into an actor (RFC 7033, as Mastodon uses it)."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from app.models import Account
from app.models.base import utcnow
from app.services.accounts import AccountService
from app.wellknown.routes import router as wellknown_router
from tests.lab import Instance, Lab

JRD = "application/jrd+json"


async def create(instance: Instance, username: str) -> None:
    await AccountService(instance.context).create_local_account(username, password="correct horse battery")


@pytest.fixture
async def alice(instance: Instance) -> Instance:
    await create(instance, "alice")
    return instance


async def test_acct_resource_describes_the_account(alice: Instance) -> None:
    response = await alice.client.get("/.well-known/webfinger", params={"resource": "acct:alice@a.test"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == JRD
    assert response.headers["access-control-allow-origin"] == "*"
    document = response.json()
    assert document["subject"] == "acct:alice@a.test"
    assert "http://a.test/users/alice" in document["aliases"]
    assert "http://a.test/@alice" in document["aliases"]
    links = {link["rel"]: link for link in document["links"]}
    assert links["self"] == {
        "rel": "self",
        "type": "application/activity+json",
        "href": "http://a.test/users/alice",
    }
    assert links["http://webfinger.net/rel/profile-page"]["href"] == "http://a.test/@alice"
    assert links["http://webfinger.net/rel/profile-page"]["type"] == "text/html"
    subscribe = links["http://ostatus.org/schema/1.0/subscribe"]["template"]
    assert subscribe.startswith("http://a.test/")
    assert "{uri}" in subscribe


async def test_self_link_is_the_actor_that_is_served(alice: Instance) -> None:
    document = (
        await alice.client.get("/.well-known/webfinger", params={"resource": "acct:alice@a.test"})
    ).json()
    href = next(link["href"] for link in document["links"] if link["rel"] == "self")
    actor = await alice.client.get(href, headers={"Accept": "application/activity+json"})
    assert actor.status_code == 200
    assert actor.json()["id"] == href


async def test_other_spellings_of_the_account(alice: Instance) -> None:
    for resource in (
        "acct:ALICE@A.TEST",
        "acct:Alice@a.test",
        "alice@a.test",
        "@alice@a.test",
        "http://a.test/users/alice",
        "http://a.test/@alice",
        "http://A.TEST/users/alice",
    ):
        response = await alice.client.get("/.well-known/webfinger", params={"resource": resource})
        assert response.status_code == 200, (resource, response.text)
        document = response.json()
        # The subject is always the canonical acct: URI, whatever was asked.
        assert document["subject"] == "acct:alice@a.test", resource
        assert {
            "rel": "self",
            "type": "application/activity+json",
            "href": "http://a.test/users/alice",
        } in document["links"], resource


async def test_unknown_account_is_404_with_a_json_error(alice: Instance) -> None:
    for resource in (
        "acct:nobody@a.test",
        "http://a.test/users/nobody",
        "http://a.test/@nobody",
        "http://a.test/about",
        # Accounts of other servers are theirs to describe.
        "acct:alice@b.test",
        "acct:alice@a.test.evil",
        "http://b.test/users/alice",
    ):
        response = await alice.client.get("/.well-known/webfinger", params={"resource": resource})
        assert response.status_code == 404, resource
        assert response.headers["content-type"].startswith("application/json"), resource
        assert isinstance(response.json()["error"], str), resource
        assert response.json()["error"], resource


async def test_malformed_or_missing_resource_is_400_with_a_message(alice: Instance) -> None:
    for resource in ("acct:alice", "acct:@a.test", "acct:alice@", "", "   "):
        response = await alice.client.get("/.well-known/webfinger", params={"resource": resource})
        assert response.status_code == 400, resource
        assert response.json()["error"], resource
    missing = await alice.client.get("/.well-known/webfinger")
    assert missing.status_code == 400
    assert "resource" in missing.json()["error"]


async def test_deleted_account_is_not_found(alice: Instance) -> None:
    async with alice.context.sessions() as session:
        account = (await session.scalars(select(Account).where(Account.username == "alice"))).one()
        account.deleted_at = utcnow()
        session.add(account)
        await session.commit()
    response = await alice.client.get("/.well-known/webfinger", params={"resource": "acct:alice@a.test"})
    assert response.status_code == 404


async def test_instance_actor_is_found_by_its_url(instance: Instance) -> None:
    response = await instance.client.get("/.well-known/webfinger", params={"resource": "http://a.test/actor"})
    assert response.status_code == 200
    document = response.json()
    assert {"rel": "self", "type": "application/activity+json", "href": "http://a.test/actor"} in (
        document["links"]
    )
    assert document["subject"].endswith("@a.test")


async def test_domain_with_a_port(lab: Lab) -> None:
    instance = await lab.instance("127.0.0.2:9100")
    await create(instance, "bob")
    response = await instance.client.get(
        "/.well-known/webfinger", params={"resource": "acct:bob@127.0.0.2:9100"}
    )
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["subject"] == "acct:bob@127.0.0.2:9100"
    assert {
        "rel": "self",
        "type": "application/activity+json",
        "href": "http://127.0.0.2:9100/users/bob",
    } in document["links"]
    assert "http://127.0.0.2:9100/@bob" in document["aliases"]
    by_url = await instance.client.get(
        "/.well-known/webfinger", params={"resource": "http://127.0.0.2:9100/users/bob"}
    )
    assert by_url.json()["subject"] == "acct:bob@127.0.0.2:9100"
    # Without the port it is another host.
    other = await instance.client.get("/.well-known/webfinger", params={"resource": "acct:bob@127.0.0.2"})
    assert other.status_code == 404


@pytest.fixture
async def split(lab: Lab) -> Instance:
    """Handles @name@org.test, served from social.org.test (Mastodon's LOCAL_DOMAIN / WEB_DOMAIN)."""
    instance = await lab.instance("org.test", web_domain="social.org.test")
    await create(instance, "carol")
    return instance


async def test_local_domain_redirects_discovery_to_web_domain(split: Instance) -> None:
    # Every discovery document the app serves, NodeInfo's included: the README's nginx snippet
    # redirects all of them, and Herold answers the same when it is asked on LOCAL_DOMAIN itself.
    served = sorted(
        path
        for route in wellknown_router.routes
        if (path := getattr(route, "path", "")).startswith("/.well-known/")
    )
    assert served == [
        "/.well-known/host-meta",
        "/.well-known/host-meta.json",
        "/.well-known/nodeinfo",
        "/.well-known/webfinger",
    ]
    for url in (
        "/.well-known/webfinger?resource=acct%3Acarol%40org.test",
        "/.well-known/host-meta",
        "/.well-known/host-meta.json",
        "/.well-known/nodeinfo",
    ):
        response = await split.client.get(url, headers={"Host": "org.test"})
        assert response.status_code == 301, url
        assert response.headers["location"] == f"http://social.org.test{url}"
        assert response.headers["access-control-allow-origin"] == "*", url


async def test_web_domain_answers_for_local_domain_handles(split: Instance) -> None:
    response = await split.client.get(
        "/.well-known/webfinger",
        params={"resource": "acct:carol@org.test"},
        headers={"Host": "social.org.test"},
    )
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["subject"] == "acct:carol@org.test"
    assert {
        "rel": "self",
        "type": "application/activity+json",
        "href": "http://social.org.test/users/carol",
    } in document["links"]
    assert "http://social.org.test/@carol" in document["aliases"]


async def test_web_domain_handle_leads_to_the_same_subject(split: Instance) -> None:
    """Some servers ask with the host they fetched the actor from; the answer names the real handle."""
    response = await split.client.get(
        "/.well-known/webfinger",
        params={"resource": "acct:carol@social.org.test"},
        headers={"Host": "social.org.test"},
    )
    assert response.status_code == 200
    assert response.json()["subject"] == "acct:carol@org.test"


async def test_redirect_followed_by_a_peer_ends_at_the_account(lab: Lab, split: Instance) -> None:
    """What a remote server does with @carol@org.test when org.test only redirects."""
    lab.network.register("org.test", split.app)
    async with httpx.AsyncClient(transport=lab.network, follow_redirects=True) as peer:
        response = await peer.get(
            "http://org.test/.well-known/webfinger", params={"resource": "acct:carol@org.test"}
        )
    assert response.status_code == 200
    assert str(response.url).startswith("http://social.org.test/.well-known/webfinger?")
    assert response.json()["subject"] == "acct:carol@org.test"
