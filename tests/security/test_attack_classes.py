"""One test per attack class of issue 6. Classes already pinned elsewhere are listed in CATALOGUE
(and checked to still exist) rather than tested twice; the rest are here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlmodel import col, select

from app.http_errors import API_PATH_PREFIXES
from app.models import Account, Post, Role
from tests.federation.inbox_peer import Peer, create, follow_locally, known_actor, note, process_inbox
from tests.lab import Instance, Lab
from tests.web.helpers import logged_in

ROOT = Path(__file__).resolve().parents[2]

# attack class → the tests that pin it (file::function).
CATALOGUE = {
    "forged origin (object on another host)": [
        "tests/federation/test_inbox_posts.py::test_object_from_another_server_is_not_created",
        "tests/federation/test_inbox_http.py::test_activity_id_on_another_server_is_400",
    ],
    "spoofed Announce": [
        "tests/federation/test_inbox_interactions.py::test_boost_whose_post_its_origin_does_not_serve_is_dropped",
    ],
    "key/actor mismatch": [
        "tests/federation/test_inbox_http.py::test_signature_by_another_key_is_401",
        "tests/federation/test_inbox_http.py::test_key_whose_actor_does_not_list_it_is_401",
        "tests/federation/test_inbox_http.py::test_key_document_claiming_a_foreign_owner_is_401",
    ],
    "replay": ["tests/federation/test_inbox_http.py::test_redelivery_is_stored_and_processed_once"],
    "stale Date": ["tests/federation/test_inbox_http.py::test_bad_signatures_are_401_with_the_reason"],
    "oversized body": [
        "tests/federation/test_inbox_http.py::test_body_over_a_megabyte_is_413_from_content_length",
        "tests/federation/test_inbox_http.py::test_body_over_a_megabyte_is_413_while_streaming",
    ],
    "deep JSON nesting, invalid UTF-8": [
        "tests/federation/test_inbox_http.py::test_malformed_bodies_are_400"
    ],
    "SSRF through a redirect": [
        "tests/activitypub/test_transport.py::test_redirect_to_forbidden_address_refused",
        "tests/activitypub/test_transport.py::test_redirect_to_loopback_refused",
        "tests/activitypub/test_transport.py::test_redirect_to_name_resolving_to_forbidden_address_refused",
    ],
    "SSRF in deliveries (their own connections, no redirects followed)": [
        "tests/activitypub/test_delivery_connections.py::test_a_forbidden_address_is_never_connected_to",
        "tests/activitypub/test_delivery_connections.py::test_a_name_is_resolved_and_its_addresses_checked",
    ],
    "CSRF from another site": ["tests/web/test_auth.py::test_a_form_from_another_site_is_refused"],
}


@pytest.mark.parametrize(
    "node", [node for nodes in CATALOGUE.values() for node in nodes], ids=lambda node: node.split("::")[1]
)
def test_each_attack_class_is_still_pinned(node: str) -> None:
    path, name = node.split("::")
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    names = {item.name for item in tree.body if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert name in names, f"{node} is gone: pin its attack class again"


def post_routes(instance: Instance) -> list[str]:
    """Every POST route the app serves but the inboxes (signed, not forms) and the client API
    (bearer tokens, never cookies: a cross-site form carries no credentials there), from its
    OpenAPI schema. The OAuth authorize form is a form, and is checked."""
    schema = instance.app.openapi()
    return sorted(
        path
        for path, methods in schema["paths"].items()
        if "post" in methods and not path.endswith("/inbox") and not path.startswith(API_PATH_PREFIXES)
    )


async def test_every_form_refuses_a_post_without_its_csrf_token(instance: Instance) -> None:
    paths = post_routes(instance)
    assert "/admin/domains" in paths and "/compose" in paths and "/login" in paths
    assert "/oauth/authorize" in paths and "/settings/development" in paths
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    for path in paths:
        filled = path
        while "{" in filled:
            start = filled.index("{")
            filled = filled[:start] + "1" + filled[filled.index("}", start) + 1 :]
        response = await admin.client.post(filled, data={"domain": "evil.test", "text": "hi"})
        assert response.status_code == 403, (path, response.status_code)
        wrong = await admin.client.post(filled, data={"csrf_token": "x" * 43, "domain": "evil.test"})
        assert wrong.status_code == 403, (path, wrong.status_code)


async def test_header_injection_goes_nowhere(instance: Instance) -> None:
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    response = await admin.client.get("/login", params={"next": "/home\r\nSet-Cookie: evil=1"})
    assert response.status_code < 500 and "evil" not in response.headers.get("set-cookie", "")
    for value in ["evil.test\r\nX-Injected: 1", "evil.test\nSet-Cookie: a=b"]:
        refused = await admin.post("/admin/domains", {"domain": value})
        assert refused.status_code == 400 and "x-injected" not in refused.headers


XSS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="JaVaScRiPt&#58;alert(1)">entity</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;:alert(1)">obfuscated</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data</a>',
    '<svg onload="alert(1)"><circle/></svg>',
    '<p style="background:url(javascript:alert(1))">css</p>',
    '<iframe src="https://evil.example"></iframe>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
]
FORBIDDEN = [
    "<script",
    "onerror",
    "onload",
    "javascript:",
    "data:text",
    "<svg",
    "style=",
    "<iframe",
    "<style",
]


async def test_xss_in_content_name_and_summary_is_neutralised(lab: Lab) -> None:
    here = await lab.instance("a.test", embedded_worker=False)
    alice_browser = await logged_in(here, "alice")
    peer = Peer(lab).host("remote.test")
    bob = peer.actor(
        "http://remote.test/users/bob",
        name='<img src=x onerror="alert(1)">Bob',
        summary="".join(XSS),
    )
    async with here.context.sessions() as session:
        alice = await session.scalar(select(Account).where(col(Account.username) == "alice"))
    assert alice is not None
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    for number, payload in enumerate(XSS, start=1):
        obj = note(bob, number, content=f"<p>{payload}</p>", summary=payload)
        response = await peer.deliver(here, bob, create(bob, obj))
        assert response.status_code == 202
    await process_inbox(here)

    async with here.context.sessions() as session:
        posts = (await session.scalars(select(Post).where(col(Post.local).is_(False)))).all()
        stored_bob = await session.scalar(select(Account).where(col(Account.uri) == bob.uri))
    assert len(posts) == len(XSS)
    assert stored_bob is not None
    for html in [post.content_html for post in posts] + [
        stored_bob.note_html if hasattr(stored_bob, "note_html") else ""
    ]:
        lowered = html.lower()
        assert not any(marker in lowered for marker in FORBIDDEN), html
    page = (await alice_browser.get("/home")).text.lower()
    assert len(posts) and "bob" in page
    # Names are text: their markup shows escaped (`&lt;img …`), never as elements.
    for marker in ["<script>alert", "<img src=x", "<svg", 'href="javascript:', "<iframe", "<math"]:
        assert marker not in page, marker
