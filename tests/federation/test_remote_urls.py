"""URLs and names from other servers reach our pages only when they are safe to write there.

A remote Note's `url`, an actor's `icon` and `image`, an attachment's `url`: only http(s) goes into
a link, an image or the page head (canonical, og:url, og:image); a refused avatar shows the
default picture. An actor whose preferredUsername is no user name is refused when it would be
stored, with a 4xx at the inbox.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlmodel import select

from app.models import Account, Post
from app.web.templating import http_url
from tests.federation.inbox_peer import (
    BOB,
    Peer,
    create,
    deliver_and_process,
    follow_locally,
    known_actor,
    rows,
)
from tests.lab import Lab
from tests.web.helpers import logged_in

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "corpus" / "pleroma-fixtures"
HOSTILE = ["javascript:alert(document.domain)", "data:text/html,<script>alert(1)</script>", "/relative"]


def mastodon_note_with_attachment(author: str, number: int, url: str) -> dict[str, Any]:
    """The Note of Mastodon's Create-with-attachment in the corpus, moved to `author`, with `url` as
    its web address and its attachment's."""
    document = json.loads((CORPUS / "mastodon-create-with-attachment.json").read_text())
    text = json.dumps(document["object"]).replace("http://mastodon.example.org/users/admin", author)
    note: dict[str, Any] = json.loads(text)
    note["id"] = f"{author}/statuses/{number}"
    note["url"] = url
    note["attachment"][0]["url"] = url
    return note


async def test_remote_urls_that_are_not_http_never_reach_a_page(lab: Lab) -> None:
    here = await lab.instance("a.test", embedded_worker=False)
    peer = Peer(lab).host("remote.test")
    browser = await logged_in(here, "carol")
    [carol] = await rows(here, Account, Account.username == "carol")
    bob = peer.actor(
        BOB,
        icon={"type": "Image", "mediaType": "image/png", "url": HOSTILE[0]},
        image={"type": "Image", "mediaType": "image/png", "url": HOSTILE[1]},
        url=HOSTILE[0],
    )
    await known_actor(here, bob)
    await follow_locally(here, carol, bob.uri)
    for number, url in enumerate(HOSTILE, start=1):
        note = mastodon_note_with_attachment(bob.uri, number, url)
        item = await deliver_and_process(here, peer, bob, create(bob, note))
        assert item.last_error is None
    async with here.context.sessions() as session:
        posts = (await session.scalars(select(Post).where(Post.local.is_(False)))).all()  # type: ignore[attr-defined]
    assert len(posts) == len(HOSTILE)

    pages = [await browser.get("/home"), await browser.get(f"/search?q={bob.uri}")]
    pages += [await browser.get(f"/posts/{post.id}") for post in posts]
    for page in pages:
        assert page.status_code == 200
        for hostile in HOSTILE:
            for attribute in ("href", "src", "content"):
                assert f'{attribute}="{hostile}' not in page.text.replace("&#34;", '"')
        assert "javascript:" not in page.text
        assert "data:text/html" not in page.text
    # bob's avatar is the default picture, not a broken image.
    assert 'avatar-placeholder" aria-hidden="true">B<' in pages[0].text
    assert '<img class="avatar' not in pages[0].text
    # The head of a remote post's page: the canonical link and og:url fall back to the post's id.
    thread = pages[2].text
    head = thread.split("</head>", 1)[0]
    assert f'<link rel="canonical" href="{posts[0].uri}">' in head
    assert f'<meta property="og:url" content="{posts[0].uri}">' in head
    assert "og:image" not in head


def test_the_one_url_filter_lets_only_http_with_a_host_through() -> None:
    for url in ["https://remote.test/@bob/1", "http://remote.test:8080/a?b=c#d", "HTTPS://Remote.Test/x"]:
        assert http_url(url) == url
    for url in [
        *HOSTILE,
        None,
        "",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "\x01https://remote.test/",
        "https://remote.test/a b",
        "https:///path-without-host",
        "http://[::1",
        "vbscript:msgbox(1)",
        "//remote.test/protocol-relative",
    ]:
        assert http_url(url) == "", url


async def test_an_actor_whose_preferred_username_is_no_user_name_is_refused(lab: Lab) -> None:
    here = await lab.instance("a.test", embedded_worker=False)
    peer = Peer(lab).host("remote.test")
    for number, name in enumerate(["bob@evil.example", '"><img src=x>', "bob alice", "x" * 300]):
        impostor = peer.actor(f"http://remote.test/users/impostor{number}", preferredUsername=name)
        note = mastodon_note_with_attachment(impostor.uri, 1, f"http://remote.test/@impostor{number}/1")
        refused = await peer.deliver(here, impostor, create(impostor, note))
        assert refused.status_code == 401, refused.text
        assert "preferredUsername" in refused.json()["error"]
        assert "is not a valid user name" in refused.json()["error"]
    assert await rows(here, Account, Account.domain == "remote.test") == []
    # A user name as Mastodon, Misskey or Friendica allow it is stored as given.
    fine = peer.actor("http://remote.test/users/fine", preferredUsername="Jörg.Müller-2")
    note = mastodon_note_with_attachment(fine.uri, 1, "http://remote.test/@fine/1")
    assert (await peer.deliver(here, fine, create(fine, note))).status_code == 202
    [stored] = await rows(here, Account, Account.domain == "remote.test")
    assert stored.username == "Jörg.Müller-2"
