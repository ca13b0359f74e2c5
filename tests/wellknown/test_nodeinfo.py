"""NodeInfo and host-meta: what crawlers, instance lists and older servers read about this instance."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest
from sqlmodel import select

from app.models import Post, User, Visibility
from app.models.base import utcnow
from app.services import events
from app.services.accounts import AccountService, CreatedAccount
from tests.lab import Instance

SCHEMAS = Path(__file__).resolve().parent.parent / "fixtures" / "nodeinfo"
NODEINFO_REL = "http://nodeinfo.diaspora.software/ns/schema/{version}"
XRD_NS = "{http://docs.oasis-open.org/ns/xri/xrd-1.0}"
LRDD_TEMPLATE = "http://a.test/.well-known/webfinger?resource={uri}"


def schema(version: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"schema-{version}.json").read_text())
    return loaded


async def nodeinfo(instance: Instance, version: str) -> dict[str, Any]:
    response = await instance.client.get(f"/nodeinfo/{version}")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def test_discovery_document_links_both_versions(instance: Instance) -> None:
    response = await instance.client.get("/.well-known/nodeinfo")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    links = response.json()["links"]
    assert {"rel": NODEINFO_REL.format(version="2.0"), "href": "http://a.test/nodeinfo/2.0"} in links
    assert {"rel": NODEINFO_REL.format(version="2.1"), "href": "http://a.test/nodeinfo/2.1"} in links
    for link in links:
        assert (await instance.client.get(link["href"])).status_code == 200, link


async def test_documents_follow_the_official_schema(instance: Instance) -> None:
    await AccountService(instance.context).create_local_account("alice")
    for version in ("2.0", "2.1"):
        await check_against_schema(instance, version)


async def check_against_schema(instance: Instance, version: str) -> None:
    response = await instance.client.get(f"/nodeinfo/{version}")
    assert response.status_code == 200
    content_type = response.headers["content-type"]
    assert content_type.split(";")[0] == "application/json"
    assert f'profile="http://nodeinfo.diaspora.software/ns/schema/{version}#"' in content_type
    assert response.headers["access-control-allow-origin"] == "*"
    document = response.json()
    validator = jsonschema.validators.validator_for(schema(version))
    validator.check_schema(schema(version))
    validator(schema(version)).validate(document)
    assert document["version"] == version
    assert document["software"]["name"] == "herold"
    assert document["software"]["version"]
    assert document["protocols"] == ["activitypub"]
    assert document["openRegistrations"] is False
    assert document["metadata"]["nodeName"] == "Herold"


@pytest.mark.parametrize("version", ["2.0", "2.1"])
def test_the_schemas_refuse_what_peers_would_refuse(version: str) -> None:
    """The fixtures are the real, strict schemas: a wrong document does not pass them."""
    validator = jsonschema.validators.validator_for(schema(version))(schema(version))
    good = {
        "version": version,
        "software": {"name": "herold", "version": "0.1.0"},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {"users": {"total": 1}},
        "metadata": {},
    }
    validator.validate(good)
    bad = [
        {**good, "software": {"name": "Herold", "version": "0.1.0"}},
        {**good, "protocols": []},
        {**good, "protocols": ["activitypub", "nostr"]},
        {**good, "usage": {"users": {"total": -1}}},
        {**good, "version": "2.2"},
        {key: value for key, value in good.items() if key != "metadata"},
    ]
    for document in bad:
        assert not validator.is_valid(document), document


def test_repository_and_homepage_are_only_in_2_1() -> None:
    software = {"name": "herold", "version": "1", "homepage": "https://example.org"}
    document = {
        "software": software,
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {"users": {}},
        "metadata": {},
    }
    assert jsonschema.Draft4Validator(schema("2.1")).is_valid({**document, "version": "2.1"})
    assert not jsonschema.Draft4Validator(schema("2.0")).is_valid({**document, "version": "2.0"})


async def test_usage_counts_follow_the_accounts(instance: Instance) -> None:
    empty = await nodeinfo(instance, "2.1")
    # The instance actor is not a user.
    assert empty["usage"]["users"] == {"total": 0, "activeMonth": 0, "activeHalfyear": 0}
    assert empty["usage"]["localPosts"] == 0

    accounts = AccountService(instance.context)
    alice: CreatedAccount = await accounts.create_local_account("alice")
    await accounts.create_local_account("news", organization=True)
    async with instance.context.sessions() as session:
        user = (await session.scalars(select(User).where(User.id == alice.user.id))).one()
        user.last_login_at = utcnow() - timedelta(days=2)
        session.add(user)
        for number in range(3):
            session.add(
                Post(
                    uri=f"http://a.test/users/alice/statuses/{number}",
                    account_id=alice.account.id,
                    local=True,
                    visibility=Visibility.PUBLIC,
                    content_html=f"<p>post {number}</p>",
                    deleted_at=utcnow() if number == 2 else None,
                )
            )
        # Written behind the services' back, so announced as they would (the public cache listens).
        events.announce(session, [events.PublicContentChanged()])
        await session.commit()

    for version in ("2.0", "2.1"):
        usage = (await nodeinfo(instance, version))["usage"]
        assert usage["users"] == {"total": 2, "activeMonth": 1, "activeHalfyear": 1}, version
        # Deleted posts are not counted.
        assert usage["localPosts"] == 2, version


async def test_instance_name_and_registrations_come_from_settings(lab: Any) -> None:
    instance = await lab.instance("c.test", instance_name="Example Org", open_registrations=True)
    document = await nodeinfo(instance, "2.0")
    assert document["metadata"]["nodeName"] == "Example Org"
    assert document["openRegistrations"] is True


async def test_unknown_version_is_404(instance: Instance) -> None:
    for version in ("1.0", "2.2", "latest"):
        response = await instance.client.get(f"/nodeinfo/{version}")
        assert response.status_code == 404, version
        assert "2.1" in response.json()["error"]


async def test_host_meta_is_xrd_by_default(instance: Instance) -> None:
    response = await instance.client.get("/.well-known/host-meta")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/xrd+xml"
    assert response.headers["access-control-allow-origin"] == "*"
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{XRD_NS}XRD"
    links = root.findall(f"{XRD_NS}Link")
    assert [(link.get("rel"), link.get("template")) for link in links] == [("lrdd", LRDD_TEMPLATE)]


async def test_host_meta_as_json(instance: Instance) -> None:
    expected = {"links": [{"rel": "lrdd", "template": LRDD_TEMPLATE}]}
    by_accept = await instance.client.get("/.well-known/host-meta", headers={"Accept": "application/json"})
    assert by_accept.status_code == 200
    assert by_accept.headers["content-type"].split(";")[0] == "application/json"
    assert by_accept.json() == expected
    by_path = await instance.client.get("/.well-known/host-meta.json")
    assert by_path.status_code == 200
    assert by_path.headers["access-control-allow-origin"] == "*"
    assert by_path.json() == expected


async def test_host_meta_xml_for_xml_and_browser_clients(instance: Instance) -> None:
    for accept in ("application/xrd+xml", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"):
        response = await instance.client.get("/.well-known/host-meta", headers={"Accept": accept})
        assert response.headers["content-type"].split(";")[0] == "application/xrd+xml", accept


async def test_host_meta_tells_caches_it_varies_by_accept(instance: Instance) -> None:
    """The same URL answers XML or JSON by Accept; a shared cache must not hand one to the other."""
    for accept in ("application/json", "application/xrd+xml"):
        response = await instance.client.get("/.well-known/host-meta", headers={"Accept": accept})
        assert "accept" in response.headers.get("vary", "").lower(), accept


async def test_host_meta_template_leads_to_webfinger(instance: Instance) -> None:
    await AccountService(instance.context).create_local_account("alice")
    template = (await instance.client.get("/.well-known/host-meta.json")).json()["links"][0]["template"]
    response = await instance.client.get(template.replace("{uri}", "acct%3Aalice%40a.test"))
    assert response.status_code == 200
    assert response.json()["subject"] == "acct:alice@a.test"
