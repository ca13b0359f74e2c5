"""Domain models → ActivityStreams JSON. The only place that builds outgoing AS2 documents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.models import Account, Post
from app.models.base import utcnow
from app.urls import LocalUrls

AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"

# The extension terms our actors and notes use, named as Mastodon names them so its JSON-LD handling agrees.
EXTENSION_TERMS: dict[str, Any] = {
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "sensitive": "as:sensitive",
    "Hashtag": "as:Hashtag",
    "movedTo": {"@id": "as:movedTo", "@type": "@id"},
    "alsoKnownAs": {"@id": "as:alsoKnownAs", "@type": "@id"},
    "toot": "http://joinmastodon.org/ns#",
    "featured": {"@id": "toot:featured", "@type": "@id"},
    "featuredTags": {"@id": "toot:featuredTags", "@type": "@id"},
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "Emoji": "toot:Emoji",
    "schema": "http://schema.org#",
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
    "webfinger": "https://purl.archive.org/socialweb/webfinger#webfinger",
}
ACTOR_CONTEXT: list[Any] = [AS_CONTEXT, SECURITY_CONTEXT, EXTENSION_TERMS]


def iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def _image(url: str | None) -> dict[str, Any] | None:
    if not url:
        return None
    media_type = "image/png" if url.endswith(".png") else "image/jpeg"
    return {"type": "Image", "mediaType": media_type, "url": url}


def render_actor(account: Account, urls: LocalUrls) -> dict[str, Any]:
    """A local account's actor document, as Mastodon serves one (its fetchers check `id` equals the URL)."""
    name = account.username
    is_instance_actor = account.uri == urls.instance_actor
    document: dict[str, Any] = {
        "@context": ACTOR_CONTEXT,
        "id": account.uri,
        "type": account.actor_type,
        "preferredUsername": name,
        "name": account.display_name,
        "summary": account.summary_html,
        "url": account.url,
        "inbox": account.inbox_url,
        "outbox": account.outbox_url,
        "manuallyApprovesFollowers": account.manually_approves_followers,
        "discoverable": account.discoverable,
        "indexable": account.indexable,
        "published": iso(account.created_at),
        "endpoints": {"sharedInbox": urls.shared_inbox},
        "publicKey": {"id": account.key_id, "owner": account.uri, "publicKeyPem": account.public_key_pem},
    }
    if not is_instance_actor:
        document.update(
            {
                "followers": account.followers_url,
                "following": account.following_url,
                "featured": account.featured_url,
                "featuredTags": urls.featured_tags(name),
                "attachment": [
                    {"type": "PropertyValue", "name": field.get("name", ""), "value": field.get("value", "")}
                    for field in account.fields
                ],
                "alsoKnownAs": list(account.also_known_as),
                "tag": list(account.emojis),
                "webfinger": f"acct:{name}@{urls.local_domain}",
            }
        )
        if account.moved_to_uri:
            document["movedTo"] = account.moved_to_uri
    icon = _image(account.avatar_url)
    if icon:
        document["icon"] = icon
    image = _image(account.header_url)
    if image:
        document["image"] = image
    return document


def render_tombstone(uri: str, former_type: str = "Person") -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": uri,
        "type": "Tombstone",
        "formerType": former_type,
        "deleted": iso(utcnow()),
    }


def render_ordered_collection(collection_id: str, total: int, *, first: str | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": total,
    }
    if first is not None:
        document["first"] = first
    return document


def render_ordered_collection_page(
    page_id: str,
    collection_id: str,
    items: list[Any],
    *,
    total: int,
    next_page: str | None,
    prev_page: str | None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": page_id,
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
        "totalItems": total,
        "orderedItems": items,
    }
    if next_page:
        document["next"] = next_page
    if prev_page:
        document["prev"] = prev_page
    return document


def render_note(post: Post, author: Account) -> dict[str, Any]:
    """A post as a Note (or the type it was written as), addressed as stored."""
    note: dict[str, Any] = {
        "id": post.uri,
        "type": post.object_type,
        "attributedTo": author.uri,
        "content": post.content_html,
        "summary": post.summary or None,
        "sensitive": post.sensitive,
        "published": iso(post.published_at),
        "url": post.url or post.uri,
        "to": list(post.to),
        "cc": list(post.cc),
        "inReplyTo": post.in_reply_to_uri,
    }
    if post.language:
        note["contentMap"] = {post.language: post.content_html}
    if post.edited_at:
        note["updated"] = iso(post.edited_at)
    if post.conversation_uri:
        note["conversation"] = post.conversation_uri
    return note


def render_outbox_item(post: Post, author: Account, reblogged: Post | None) -> dict[str, Any]:
    """An outbox entry: the Create of a post, or the Announce of a boost."""
    if reblogged is not None:
        return {
            "id": post.uri,
            "type": "Announce",
            "actor": author.uri,
            "published": iso(post.published_at),
            "to": list(post.to),
            "cc": list(post.cc),
            "object": reblogged.uri,
        }
    return {
        "id": f"{post.uri}/activity",
        "type": "Create",
        "actor": author.uri,
        "published": iso(post.published_at),
        "to": list(post.to),
        "cc": list(post.cc),
        "object": render_note(post, author),
    }
