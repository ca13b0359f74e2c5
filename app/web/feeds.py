"""RSS 2.0 and Atom feeds of an account's public posts, built with ElementTree (escaping is its job)."""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import format_datetime
from xml.etree import ElementTree

from app.activitypub.renderers import iso
from app.context import AppContext
from app.models import Account, Post
from app.services.html_sanitizer import html_to_plain_text

ATOM_NS = "http://www.w3.org/2005/Atom"
ElementTree.register_namespace("atom", ATOM_NS)


def _title(post: Post) -> str:
    text = post.summary or html_to_plain_text(post.content_html)
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:79].rstrip() + "…"


def _item_html(post: Post) -> str:
    if post.summary:
        return f"<p><strong>{_escape(post.summary)}</strong></p>{post.content_html}"
    return post.content_html


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _sub(
    parent: ElementTree.Element, tag: str, text: str | None = None, **attributes: str
) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def rss_feed(context: AppContext, account: Account, posts: Sequence[Post], site_name: str) -> bytes:
    name = account.display_name or account.username
    profile = account.url or context.urls.profile_page(account.username)
    rss = ElementTree.Element("rss", {"version": "2.0"})
    channel = _sub(rss, "channel")
    _sub(channel, "title", name)
    _sub(channel, "link", profile)
    _sub(
        channel,
        "description",
        html_to_plain_text(account.summary_html) or f"Public posts from @{account.username}",
    )
    _sub(channel, f"{{{ATOM_NS}}}link", href=f"{profile}/feed.rss", rel="self", type="application/rss+xml")
    _sub(channel, "generator", f"Herold ({site_name})")
    if posts:
        _sub(channel, "lastBuildDate", format_datetime(posts[0].published_at))
    if account.avatar_url:
        image = _sub(channel, "image")
        _sub(image, "url", account.avatar_url)
        _sub(image, "title", name)
        _sub(image, "link", profile)
    for post in posts:
        item = _sub(channel, "item")
        link = post.url or post.uri
        _sub(item, "title", _title(post))
        _sub(item, "link", link)
        _sub(item, "guid", link, isPermaLink="true")
        _sub(item, "pubDate", format_datetime(post.published_at))
        _sub(item, "description", _item_html(post))
    return ElementTree.tostring(rss, encoding="utf-8", xml_declaration=True)


def atom_feed(context: AppContext, account: Account, posts: Sequence[Post]) -> bytes:
    name = account.display_name or account.username
    profile = account.url or context.urls.profile_page(account.username)
    feed = ElementTree.Element(f"{{{ATOM_NS}}}feed")
    _sub(feed, f"{{{ATOM_NS}}}id", profile)
    _sub(feed, f"{{{ATOM_NS}}}title", name)
    subtitle = html_to_plain_text(account.summary_html)
    if subtitle:
        _sub(feed, f"{{{ATOM_NS}}}subtitle", subtitle)
    _sub(
        feed,
        f"{{{ATOM_NS}}}updated",
        iso(posts[0].edited_at or posts[0].published_at) if posts else iso(account.updated_at),
    )
    _sub(feed, f"{{{ATOM_NS}}}link", href=profile, rel="alternate", type="text/html")
    _sub(feed, f"{{{ATOM_NS}}}link", href=f"{profile}/feed.atom", rel="self", type="application/atom+xml")
    author = _sub(feed, f"{{{ATOM_NS}}}author")
    _sub(author, f"{{{ATOM_NS}}}name", name)
    _sub(author, f"{{{ATOM_NS}}}uri", profile)
    if account.avatar_url:
        _sub(feed, f"{{{ATOM_NS}}}icon", account.avatar_url)
    _sub(feed, f"{{{ATOM_NS}}}generator", "Herold")
    for post in posts:
        entry = _sub(feed, f"{{{ATOM_NS}}}entry")
        link = post.url or post.uri
        _sub(entry, f"{{{ATOM_NS}}}id", post.uri)
        _sub(entry, f"{{{ATOM_NS}}}title", _title(post))
        _sub(entry, f"{{{ATOM_NS}}}link", href=link, rel="alternate", type="text/html")
        _sub(entry, f"{{{ATOM_NS}}}published", iso(post.published_at))
        _sub(entry, f"{{{ATOM_NS}}}updated", iso(post.edited_at or post.published_at))
        _sub(entry, f"{{{ATOM_NS}}}content", _item_html(post), type="html")
    return ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)
