"""ActivityStreams JSON from other servers → plain values the domain understands.

Every server shapes its JSON a little differently (a `url` may be a string, a Link or a list of
them; `publicKey` an object or a list; `icon` an Image or a list); the quirks end here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from app.services.html_sanitizer import sanitize_remote_html

ACTOR_TYPES = frozenset({"Person", "Organization", "Service", "Application", "Group"})


class InvalidObject(ValueError):
    """A remote document that cannot be used; the message says why."""


def authority(url: str) -> str:
    """Lower-case host with port (when not the scheme's default) of a URL; the origin we compare."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidObject(f"{url!r} is not an http(s) URL")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        raise InvalidObject(f"{url!r} has an invalid port") from None
    if port is None or (parts.scheme, port) in (("http", 80), ("https", 443)):
        return host
    return f"{host}:{port}"


def same_origin(first: str, second: str) -> bool:
    try:
        return urlsplit(first).scheme == urlsplit(second).scheme and authority(first) == authority(second)
    except InvalidObject:
        return False


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def first_id(value: Any) -> str | None:
    """The id of a reference that may be a string, an object with `id`/`href`, or a list of those."""
    for item in as_list(value):
        if isinstance(item, str) and item:
            return item
        if isinstance(item, dict):
            found = item.get("id") or item.get("href")
            if isinstance(found, str) and found:
                return found
    return None


def link_href(value: Any, prefer_media_type: str = "text/html") -> str | None:
    """An `url` property: a string, a Link, or a list of them (PeerTube, Misskey)."""
    candidates = as_list(value)
    for item in candidates:
        if isinstance(item, dict) and item.get("mediaType") == prefer_media_type:
            href = item.get("href")
            if isinstance(href, str):
                return href
    for item in candidates:
        if isinstance(item, str):
            return item
        if isinstance(item, dict) and isinstance(item.get("href"), str):
            return str(item["href"])
    return None


def image_url(value: Any) -> str | None:
    for item in as_list(value):
        if isinstance(item, str):
            return item
        if isinstance(item, dict):
            found = link_href(item.get("url")) or (
                item.get("href") if isinstance(item.get("href"), str) else None
            )
            if found:
                return found
    return None


def text(value: Any, limit: int = 10_000) -> str:
    return value[:limit] if isinstance(value, str) else ""


def boolean(value: Any, default: bool = False) -> bool:
    return value if isinstance(value, bool) else default


@dataclass
class RemoteKey:
    key_id: str
    owner: str
    public_key_pem: str


@dataclass
class ActorData:
    uri: str
    actor_type: str
    username: str
    domain: str
    display_name: str
    summary_html: str
    url: str | None
    inbox_url: str
    shared_inbox_url: str | None
    outbox_url: str | None
    followers_url: str | None
    following_url: str | None
    featured_url: str | None
    key: RemoteKey | None
    manually_approves_followers: bool
    discoverable: bool
    indexable: bool
    avatar_url: str | None
    header_url: str | None
    fields: list[dict[str, str]] = field(default_factory=list)
    also_known_as: list[str] = field(default_factory=list)
    moved_to_uri: str | None = None
    emojis: list[dict[str, Any]] = field(default_factory=list)


def parse_key(document: Any, owner: str | None = None) -> RemoteKey | None:
    """A `publicKey` (object or list; the one owned by `owner` when given) or a standalone key document."""
    for candidate in as_list(document):
        if not isinstance(candidate, dict):
            continue
        key_id, key_owner, pem = candidate.get("id"), candidate.get("owner"), candidate.get("publicKeyPem")
        if not (isinstance(key_id, str) and isinstance(pem, str)):
            continue
        if not isinstance(key_owner, str):
            key_owner = owner or ""
        if owner is not None and key_owner != owner:
            continue
        return RemoteKey(key_id=key_id, owner=key_owner, public_key_pem=pem)
    return None


def parse_emojis(tags: Any) -> list[dict[str, Any]]:
    emojis = []
    for tag in as_list(tags):
        if isinstance(tag, dict) and tag.get("type") == "Emoji" and isinstance(tag.get("name"), str):
            url = image_url(tag.get("icon"))
            if url:
                emojis.append({"shortcode": tag["name"].strip(":"), "url": url})
    return emojis[:100]


def parse_actor(document: dict[str, Any]) -> ActorData:
    uri = document.get("id")
    if not isinstance(uri, str):
        raise InvalidObject("the actor has no id")
    actor_type = document.get("type")
    if actor_type not in ACTOR_TYPES:
        raise InvalidObject(f"{actor_type!r} is not an actor type")
    inbox = document.get("inbox")
    if not isinstance(inbox, str):
        raise InvalidObject("the actor has no inbox")
    domain = authority(uri)
    username = document.get("preferredUsername")
    if not isinstance(username, str) or not username:
        username = urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1] or domain
    endpoints = document.get("endpoints") if isinstance(document.get("endpoints"), dict) else {}
    shared_inbox = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    fields = [
        {"name": text(item.get("name"), 255), "value": sanitize_remote_html(text(item.get("value"), 2048))}
        for item in as_list(document.get("attachment"))
        if isinstance(item, dict) and item.get("type") == "PropertyValue"
    ][:16]
    return ActorData(
        uri=uri,
        actor_type=str(actor_type),
        username=username[:255],
        domain=domain,
        display_name=text(document.get("name"), 255),
        summary_html=sanitize_remote_html(text(document.get("summary"))),
        url=link_href(document.get("url")),
        inbox_url=inbox,
        shared_inbox_url=shared_inbox if isinstance(shared_inbox, str) else None,
        outbox_url=first_id(document.get("outbox")),
        followers_url=first_id(document.get("followers")),
        following_url=first_id(document.get("following")),
        featured_url=first_id(document.get("featured")),
        key=parse_key(document.get("publicKey"), owner=uri),
        manually_approves_followers=boolean(document.get("manuallyApprovesFollowers")),
        discoverable=boolean(document.get("discoverable")),
        indexable=boolean(document.get("indexable")),
        avatar_url=image_url(document.get("icon")),
        header_url=image_url(document.get("image")),
        fields=fields,
        also_known_as=[item for item in as_list(document.get("alsoKnownAs")) if isinstance(item, str)][:16],
        moved_to_uri=first_id(document.get("movedTo")),
        emojis=parse_emojis(document.get("tag")),
    )
