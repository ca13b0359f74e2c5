"""Domain models → ActivityStreams JSON. The only place that builds outgoing AS2 documents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from app.activitypub.addressing import NoteParts
from app.models import Account, MediaAttachment, Post
from app.models.base import utcnow
from app.urls import LocalUrls

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

# The terms posts and their activities use, as Mastodon declares them for its statuses.
OBJECT_TERMS: dict[str, Any] = {
    "ostatus": "http://ostatus.org#",
    "conversation": "ostatus:conversation",
    "sensitive": "as:sensitive",
    "Hashtag": "as:Hashtag",
    "toot": "http://joinmastodon.org/ns#",
    "Emoji": "toot:Emoji",
    "blurhash": "toot:blurhash",
    "focalPoint": {"@container": "@list", "@id": "toot:focalPoint"},
}
OBJECT_CONTEXT: list[Any] = [AS_CONTEXT, OBJECT_TERMS]


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


def render_tombstone(
    uri: str, former_type: str = "Person", deleted_at: datetime | None = None
) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": uri,
        "type": "Tombstone",
        "formerType": former_type,
        # When it was deleted, not when it was asked for: the same answer on every fetch.
        "deleted": iso(deleted_at or utcnow()),
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


def mention_name(account: Account) -> str:
    # Mastodon names local accounts by user name alone and remote ones by their full acct.
    return f"@{account.acct}"


def _attachment(media: MediaAttachment) -> dict[str, Any]:
    document: dict[str, Any] = {
        "type": "Document",
        "mediaType": media.media_type,
        "url": media.url,
        "name": media.description,
    }
    if media.blurhash:
        document["blurhash"] = media.blurhash
    if media.kind in ("image", "gifv", "video"):
        # Mastodon's focal point: x from -1 (left) to 1, y from -1 (bottom) to 1.
        document["focalPoint"] = [media.focus_x, media.focus_y]
    if media.width and media.height:
        document["width"] = media.width
        document["height"] = media.height
    return document


def render_replies_collection(post_uri: str, items: Sequence[str] | None = None) -> dict[str, Any]:
    """The `replies` Collection of a local post; embedded in the Note with its first page empty."""
    collection_id = f"{post_uri}/replies"
    first: dict[str, Any] = {"type": "CollectionPage", "partOf": collection_id, "items": list(items or [])}
    if items is None:
        first["next"] = f"{collection_id}?page=true"
    return {"id": collection_id, "type": "Collection", "first": first}


def render_note(
    post: Post,
    author: Account,
    parts: NoteParts | None = None,
    *,
    urls: LocalUrls | None = None,
    with_context: bool = False,
) -> dict[str, Any]:
    """A post as a Note (or the type it was written as), addressed as stored, shaped like Mastodon's.

    `urls` is needed for the hashtags' links; `with_context` when the Note is a document of its own
    rather than embedded in an activity.
    """
    parts = parts or NoteParts()
    tags: list[dict[str, Any]] = [
        {"type": "Mention", "href": account.uri, "name": mention_name(account)} for account in parts.mentions
    ]
    if parts.tags:
        assert urls is not None, "hashtag links need the instance's URLs"
        tags += [{"type": "Hashtag", "href": urls.tag(name), "name": f"#{name}"} for name in parts.tags]
    note: dict[str, Any] = {}
    if with_context:
        note["@context"] = OBJECT_CONTEXT
    note.update(
        {
            "id": post.uri,
            "type": post.object_type,
            "summary": post.summary or None,
            "inReplyTo": post.in_reply_to_uri,
            "published": iso(post.published_at),
            "url": post.url or post.uri,
            "attributedTo": author.uri,
            "to": list(post.to),
            "cc": list(post.cc),
            "sensitive": post.sensitive,
            "content": post.content_html,
            "attachment": [_attachment(media) for media in parts.attachments],
            "tag": tags,
        }
    )
    if post.language:
        note["contentMap"] = {post.language: post.content_html}
    if post.edited_at:
        note["updated"] = iso(post.edited_at)
    if post.conversation_uri:
        note["conversation"] = post.conversation_uri
    if post.local:
        note["replies"] = render_replies_collection(post.uri)
    return note


def render_create(
    post: Post,
    author: Account,
    parts: NoteParts | None = None,
    *,
    urls: LocalUrls | None = None,
    with_context: bool = True,
) -> dict[str, Any]:
    """The Create of a post; its id is the post's id + `/activity`, where it also dereferences."""
    document: dict[str, Any] = {"@context": OBJECT_CONTEXT} if with_context else {}
    document.update(
        {
            "id": f"{post.uri}/activity",
            "type": "Create",
            "actor": author.uri,
            "published": iso(post.published_at),
            "to": list(post.to),
            "cc": list(post.cc),
            "object": render_note(post, author, parts, urls=urls),
        }
    )
    return document


def render_announce(
    boost: Post, booster: Account, original_uri: str, *, with_context: bool = True
) -> dict[str, Any]:
    """A boost: the boost post's id is the Announce's id (as Mastodon's reblogs are)."""
    document: dict[str, Any] = {"@context": AS_CONTEXT} if with_context else {}
    document.update(
        {
            "id": boost.uri,
            "type": "Announce",
            "actor": booster.uri,
            "published": iso(boost.published_at),
            "to": list(boost.to),
            "cc": list(boost.cc),
            "object": original_uri,
        }
    )
    return document


def render_outbox_item(post: Post, author: Account, reblogged: Post | None) -> dict[str, Any]:
    """An outbox entry: the Create of a post, or the Announce of a boost."""
    if reblogged is not None:
        return render_announce(post, author, reblogged.uri, with_context=False)
    return render_create(post, author, with_context=False)
