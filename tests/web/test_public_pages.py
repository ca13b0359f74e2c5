"""What visitors see without logging in: profiles, posts, hashtags, feeds, and how they follow from afar."""

from __future__ import annotations

import re
from urllib.parse import quote
from xml.etree import ElementTree

from app.models import Account, Post, PostTag, Tag, Visibility
from app.services.posting import PostingService
from app.services.profile_settings import ProfileChanges, ProfileSettingsService
from tests.lab import Instance, Lab
from tests.web.helpers import BROWSER, logged_in, make_user

ATOM = "{http://www.w3.org/2005/Atom}"


async def test_profile_page_has_previews_feeds_cache_headers_and_no_external_resources(
    instance: Instance,
) -> None:
    _user, account = await make_user(instance, "alice")
    await ProfileSettingsService(instance.context).update(
        account.id, ProfileChanges(display_name="Alice Example", bio="Hello, I write about #gardens.")
    )
    await PostingService(instance.context).create(account, "First post!")
    page = await instance.client.get("/@alice", headers=BROWSER)
    assert page.status_code == 200
    html = page.text
    assert '<meta property="og:title" content="Alice Example (@alice@a.test)">' in html
    assert '<meta property="og:description" content="Hello, I write about #gardens.">' in html
    assert '<meta property="og:url" content="http://a.test/@alice">' in html
    assert '<link rel="alternate" type="application/activity+json" href="http://a.test/users/alice">' in html
    assert 'type="application/rss+xml"' in html and 'href="http://a.test/@alice/feed.rss"' in html
    assert 'type="application/atom+xml"' in html
    assert page.headers["cache-control"] == "public, max-age=60"
    assert {part.strip() for part in page.headers["vary"].split(",")} >= {
        "Accept",
        "Accept-Language",
        "Cookie",
    }
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    # Nothing is loaded from anywhere else, and there is no inline script or style.
    loaded = re.findall(r'<script[^>]+src="([^"]+)"', html)
    loaded += re.findall(r'<link rel="(?:stylesheet|icon)" href="([^"]+)"', html)
    loaded += re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert loaded and all(url.startswith("/static/") for url in loaded), loaded
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    # The same URL still serves the actor to ActivityPub clients.
    actor = await instance.client.get("/@alice", headers={"Accept": "application/activity+json"})
    assert actor.status_code == 302
    assert actor.headers["location"] == "http://a.test/users/alice"


async def test_logged_in_pages_are_never_cached_publicly(instance: Instance) -> None:
    await make_user(instance, "alice")
    browser = await logged_in(instance, "bob")
    page = await browser.get("/@alice")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "private, no-store"


async def test_profile_shows_pinned_posts_first_and_pages_back(instance: Instance) -> None:
    _user, account = await make_user(instance, "alice")
    posting = PostingService(instance.context)
    first = await posting.create(account, "The very first post, pinned.")
    for number in range(22):
        await posting.create(account, f"Post number {number}")
    await posting.create(account, "Only for followers", visibility=Visibility.FOLLOWERS)
    await posting.pin(account, first.id)
    page = await instance.client.get("/@alice", headers=BROWSER)
    assert page.text.index("The very first post, pinned.") < page.text.index("Post number 21")
    assert "Pinned" in page.text
    assert "Only for followers" not in page.text
    assert 'rel="next" href="?page=2"' in page.text
    second = await instance.client.get("/@alice?page=2", headers=BROWSER)
    assert second.status_code == 200
    assert 'rel="prev" href="?page=1"' in second.text
    assert "Post number 0" in second.text
    assert (await instance.client.get("/@alice?page=zero", headers=BROWSER)).status_code == 400
    assert (await instance.client.get("/@nobody", headers=BROWSER)).status_code == 404


async def test_post_permalink_shows_the_thread_and_negotiates(instance: Instance) -> None:
    _user, alice = await make_user(instance, "alice")
    _user, bob = await make_user(instance, "bob")
    posting = PostingService(instance.context)
    root = await posting.create(alice, "Where shall we meet?")
    reply = await posting.create(bob, "@alice at the library", in_reply_to=str(root.id))
    hidden = await posting.create(
        bob, "@alice secret reply", in_reply_to=str(root.id), visibility=Visibility.DIRECT
    )
    page = await instance.client.get(f"/@alice/{root.id}", headers=BROWSER)
    assert page.status_code == 200
    assert "Where shall we meet?" in page.text and "at the library" in page.text
    assert "secret reply" not in page.text
    assert '<meta property="og:type" content="article">' in page.text
    assert '<meta property="og:description" content="Where shall we meet?">' in page.text
    # Link previews name the author with one @, as the profile's preview does.
    assert '<meta property="og:title" content="alice (@alice@a.test)">' in page.text
    assert "@@" not in page.text
    reply_page = await instance.client.get(f"/@bob/{reply.id}", headers=BROWSER)
    body = reply_page.text.split("<main", 1)[1]
    assert body.index("Where shall we meet?") < body.index("at the library")
    assert "In reply to @alice@a.test" in reply_page.text

    as2 = await instance.client.get(f"/@alice/{root.id}", headers={"Accept": "application/activity+json"})
    assert as2.status_code == 302
    assert as2.headers["location"] == root.uri
    for path in (f"/@bob/{hidden.id}", f"/@bob/{root.id}", "/@alice/123", "/@alice/not-a-number"):
        assert (await instance.client.get(path, headers=BROWSER)).status_code == 404, path


async def test_hashtag_page_lists_public_posts(instance: Instance) -> None:
    _user, alice = await make_user(instance, "alice")
    posting = PostingService(instance.context)
    await posting.create(alice, "Spring in the #Garden")
    await posting.create(alice, "Private #garden notes", visibility=Visibility.FOLLOWERS)
    page = await instance.client.get("/tags/garden", headers=BROWSER)
    assert page.status_code == 200
    assert "Spring in the" in page.text and "Private" not in page.text
    assert page.headers["cache-control"] == "public, max-age=60"
    assert (await instance.client.get("/tags/no%20such", headers=BROWSER)).status_code == 404
    assert (await instance.client.get("/tags/garden?max_id=abc", headers=BROWSER)).status_code == 400


async def test_rss_and_atom_feeds_carry_public_posts(instance: Instance) -> None:
    _user, alice = await make_user(instance, "alice")
    posting = PostingService(instance.context)
    post = await posting.create(alice, "Feeds <are> back & well", spoiler_text="About feeds")
    await posting.create(alice, "Followers only", visibility=Visibility.FOLLOWERS)
    rss = await instance.client.get("/@alice/feed.rss")
    assert rss.status_code == 200
    assert rss.headers["content-type"].startswith("application/rss+xml")
    assert rss.headers["cache-control"] == "public, max-age=300"
    channel = ElementTree.fromstring(rss.content).find("channel")
    assert channel is not None
    items = channel.findall("item")
    assert len(items) == 1
    assert items[0].findtext("link") == post.url
    assert items[0].findtext("title") == "About feeds"
    assert "Feeds &lt;are&gt; back &amp; well" in (items[0].findtext("description") or "")

    atom = await instance.client.get("/@alice/feed.atom")
    feed = ElementTree.fromstring(atom.content)
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 1
    assert entries[0].findtext(f"{ATOM}id") == post.uri
    assert (await instance.client.get("/@nobody/feed.rss")).status_code == 404


async def test_follow_from_your_server_goes_to_the_visitors_server(lab: Lab) -> None:
    here = await lab.instance("a.test")
    elsewhere = await lab.instance("b.test")
    await make_user(here, "alice")
    await make_user(elsewhere, "bob")
    actor = quote("http://a.test/users/alice", safe="")
    by_domain = await here.client.get("/@alice/remote-follow", params={"server": "mastodon.example"})
    assert by_domain.status_code == 303
    assert by_domain.headers["location"] == f"https://mastodon.example/authorize_interaction?uri={actor}"
    by_url = await here.client.get("/@alice/remote-follow", params={"server": "https://Social.Example/"})
    assert by_url.headers["location"].startswith("https://social.example/authorize_interaction?uri=")
    # With a handle, the visitor's own WebFinger names the page (here: Herold's own).
    by_handle = await here.client.get("/@alice/remote-follow", params={"server": "@bob@b.test"})
    assert by_handle.status_code == 303
    assert by_handle.headers["location"] == f"http://b.test/authorize_interaction?uri={actor}"
    for bad in ("", "not a domain!", "@@"):
        refused = await here.client.get("/@alice/remote-follow", params={"server": bad}, headers=BROWSER)
        assert refused.status_code == 400, bad

    # On the visitor's server, that page shows the account with a Follow button after logging in.
    anonymous = await elsewhere.client.get(f"/authorize_interaction?uri={actor}")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")
    bob = await logged_in(elsewhere, "carol")
    landed = await bob.client.get(f"/authorize_interaction?uri={actor}")
    assert landed.headers["location"] == f"/search?q={actor}"


async def test_profile_links_are_verified_with_rel_me(lab: Lab) -> None:
    here = await lab.instance("a.test")
    elsewhere = await lab.instance("b.test")
    _user, alice = await make_user(here, "alice")
    _user, bob = await make_user(elsewhere, "bob")
    # bob's page on b.test links to alice with rel="me" (every profile link Herold renders does).
    await ProfileSettingsService(elsewhere.context).update(
        bob.id, ProfileChanges(display_name="Bob", bio="", fields=[("Alice", "http://a.test/@alice")])
    )
    updated = await ProfileSettingsService(here.context).update(
        alice.id,
        ProfileChanges(
            display_name="Alice",
            bio="",
            fields=[
                ("Bob", "http://b.test/@bob"),
                ("Elsewhere", "http://c.test/nothing"),
                ("Motto", "be kind"),
            ],
        ),
    )
    assert [bool(field.get("verified_at")) for field in updated.fields] == [True, False, False]
    page = await here.client.get("/@alice", headers=BROWSER)
    assert page.text.count('class="field verified"') == 1
    assert 'rel="me nofollow noopener noreferrer"' in page.text


async def test_front_page_lists_discoverable_accounts(instance: Instance) -> None:
    await make_user(instance, "alice")
    _user, hidden = await make_user(instance, "hidden")
    await ProfileSettingsService(instance.context).update(
        hidden.id, ProfileChanges(display_name="Hidden", bio="", discoverable=False)
    )
    page = await instance.client.get("/", headers=BROWSER)
    assert "@alice@a.test" in page.text
    assert "@hidden@a.test" not in page.text
    assert "instance.actor" not in page.text


async def test_links_from_other_servers_are_only_followed_when_http(instance: Instance) -> None:
    async with instance.context.sessions() as session:
        remote = Account(
            username="mallory",
            domain="evil.test",
            uri="https://evil.test/users/mallory",
            url="javascript:alert(1)",
            avatar_url="javascript:alert(2)",
            inbox_url="https://evil.test/inbox",
        )
        session.add(remote)
        await session.flush()
        tag = Tag(name="trap")
        session.add(tag)
        await session.flush()
        post = Post(
            uri="https://evil.test/notes/1",
            url="javascript:alert(3)",
            account_id=remote.id,
            content_html="<p>A #trap</p>",
            visibility=Visibility.PUBLIC,
        )
        session.add(post)
        await session.flush()
        session.add(PostTag(post_id=post.id, tag_id=tag.id))
        await session.commit()
    page = await instance.client.get("/tags/trap", headers=BROWSER)
    assert page.status_code == 200
    assert "A #trap" in page.text
    assert "javascript:" not in page.text
