"""ActivityStreams JSON from other servers → plain values the domain understands.

Every server shapes its JSON a little differently (a `url` may be a string, a Link or a list of
them; `publicKey` an object or a list; `icon` an Image or a list); the quirks end here.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urldefrag, urlsplit

from app.activitypub.addresses import ascii_hostname, host_header
from app.models.posts import Visibility
from app.services.html_sanitizer import html_to_plain_text, sanitize_remote_html

ACTOR_TYPES = frozenset({"Person", "Organization", "Service", "Application", "Group"})
# Posts as Mastodon shows them; the converted types become their title and a link, as Mastodon does.
POST_TYPES = frozenset({"Note", "Article", "Page", "Question"})
CONVERTED_TYPES = frozenset({"Video", "Audio", "Image", "Event"})
# The ways servers write the public collection (JSON-LD compaction gives the short forms).
PUBLIC_ADDRESSES = frozenset(
    {
        "https://www.w3.org/ns/activitystreams#Public",
        "http://www.w3.org/ns/activitystreams#Public",
        "as:Public",
        "Public",
    }
)
MAX_URL_LENGTH = 2048
MAX_ATTACHMENTS = 16
MAX_TAGS = 100
MAX_ADDRESSES = 1000
_LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")
# Mastodon's rule for a remote user name (letters, digits and "_", with "." and "-" inside), in
# Unicode as some servers allow: no spaces, "@", quotes, slashes or markup in a handle shown here.
_REMOTE_USERNAME_RE = re.compile(r"^\w(?:[\w.-]{0,253}\w)?$")
_HASHTAG_RE = re.compile(r"^[\w\u00b7\u200c]{1,100}$")


class InvalidObject(ValueError):
    """A remote document that cannot be used; the message says why."""


def authority(url: str) -> str:
    """Host with port (when not the scheme's default) of a URL, as it goes in a Host header: lower
    case, an internationalised name in punycode (as domain blocks store it). The origin we compare."""
    return _origin(url)[1]


def same_origin(first: str, second: str) -> bool:
    try:
        return _origin(first) == _origin(second)
    except InvalidObject:
        return False


# A pure function of its argument, asked four times for every delivery the inbox takes, mostly
# about the same few thousand actors and keys: remembered (bounded; errors are not remembered).
@functools.lru_cache(maxsize=8192)
def _origin(url: str) -> tuple[str, str]:
    """(scheme, authority) of an http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidObject(f"{url!r} is not an http(s) URL")
    try:
        port = parts.port
    except ValueError:
        raise InvalidObject(f"{url!r} has an invalid port") from None
    try:
        host = ascii_hostname(parts.hostname)
    except UnicodeError:
        raise InvalidObject(f"{url!r} has a host name that cannot be one") from None
    return parts.scheme, host_header(host, port, parts.scheme)


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


def bounded(url: str | None, limit: int = MAX_URL_LENGTH) -> str | None:
    """An optional URL, dropped when longer than our columns hold (no real one is)."""
    return url if url is not None and len(url) <= limit else None


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
        if len(key_id) > MAX_URL_LENGTH or len(key_owner) > MAX_URL_LENGTH:
            continue
        return RemoteKey(key_id=key_id, owner=key_owner, public_key_pem=pem)
    return None


def parse_emojis(tags: Any) -> list[dict[str, Any]]:
    emojis = []
    for tag in as_list(tags):
        if isinstance(tag, dict) and tag.get("type") == "Emoji" and isinstance(tag.get("name"), str):
            url = bounded(image_url(tag.get("icon")))
            if url:
                emojis.append({"shortcode": tag["name"].strip(":")[:255], "url": url})
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
    if len(uri) > MAX_URL_LENGTH or len(inbox) > MAX_URL_LENGTH:
        raise InvalidObject(f"the actor's id or inbox is longer than {MAX_URL_LENGTH} characters")
    domain = authority(uri)
    username = document.get("preferredUsername")
    if username is not None and not isinstance(username, str):
        raise InvalidObject("the actor's preferredUsername is not a string")
    if username:
        if not _REMOTE_USERNAME_RE.fullmatch(username):
            raise InvalidObject(
                f"the actor's preferredUsername {username[:80]!r} is not a valid user name "
                "(letters, digits and _, with . or - between them)"
            )
    else:
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
        url=bounded(link_href(document.get("url"))),
        inbox_url=inbox,
        shared_inbox_url=bounded(shared_inbox) if isinstance(shared_inbox, str) else None,
        outbox_url=bounded(first_id(document.get("outbox"))),
        followers_url=bounded(first_id(document.get("followers"))),
        following_url=bounded(first_id(document.get("following"))),
        featured_url=bounded(first_id(document.get("featured"))),
        key=parse_key(document.get("publicKey"), owner=uri),
        manually_approves_followers=boolean(document.get("manuallyApprovesFollowers")),
        discoverable=boolean(document.get("discoverable")),
        indexable=boolean(document.get("indexable")),
        avatar_url=bounded(image_url(document.get("icon"))),
        header_url=bounded(image_url(document.get("image"))),
        fields=fields,
        also_known_as=[item for item in as_list(document.get("alsoKnownAs")) if isinstance(item, str)][:16],
        moved_to_uri=bounded(first_id(document.get("movedTo"))),
        emojis=parse_emojis(document.get("tag")),
    )


# --------------------------------------------------------------------------------------------
# Activities and the objects they carry


def first_type(value: Any) -> str | None:
    """`type` is a string, or (JSON-LD) a list whose first string is the one we act on."""
    for item in as_list(value):
        if isinstance(item, str) and item:
            return item
    return None


def addresses(value: Any) -> list[str]:
    """`to` / `cc`: a string, a list of strings, or (rarely) objects with an id."""
    found: list[str] = []
    for item in as_list(value)[:MAX_ADDRESSES]:
        uri = item if isinstance(item, str) else first_id(item) if isinstance(item, dict) else None
        if uri:
            found.append(uri)
    return found


ADDRESSING_FIELDS = ("to", "cc", "bto", "bcc", "audience")


def recipient_count(document: dict[str, Any]) -> int:
    """Distinct addresses in an activity's and its embedded object's addressing fields, all of them
    (unlike `addresses`, which keeps the first MAX_ADDRESSES): the size of the audience it claims."""
    found: set[str] = set()
    embedded = document.get("object")
    for holder in (document, embedded if isinstance(embedded, dict) else {}):
        for name in ADDRESSING_FIELDS:
            for item in as_list(holder.get(name)):
                uri = item if isinstance(item, str) else first_id(item) if isinstance(item, dict) else None
                if uri:
                    found.add(uri)
    return len(found)


def is_public(address: str) -> bool:
    return address in PUBLIC_ADDRESSES


def compute_visibility(to: list[str], cc: list[str], followers_url: str | None) -> Visibility:
    """Mastodon's rule: public if to Public, unlisted if Public is only in cc, followers-only when the
    author's followers collection is addressed, direct otherwise."""
    if any(is_public(address) for address in to):
        return Visibility.PUBLIC
    if any(is_public(address) for address in cc):
        return Visibility.UNLISTED
    if followers_url and (followers_url in to or followers_url in cc):
        return Visibility.FOLLOWERS
    return Visibility.DIRECT


def parse_datetime(value: Any) -> datetime | None:
    """An xsd:dateTime as servers write it (Z or an offset, with or without fractions); None if unusable."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    candidate = value.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def strip_fragment(uri: str) -> str:
    return urldefrag(uri)[0]


@dataclass(frozen=True)
class ActivityData:
    """The envelope of a received activity. `object` is the embedded object, still AS2: only the
    federation handlers look inside it, through the parsers below."""

    id: str | None
    type: str
    actor: str
    object_id: str | None
    object: dict[str, Any] | None
    target_id: str | None
    to: list[str]
    cc: list[str]
    # Emoji reactions (EmojiReact, Misskey's Like with _misskey_reaction) carry their emoji here.
    content: str | None
    emojis: list[dict[str, Any]]
    published: datetime | None

    @property
    def object_type(self) -> str | None:
        return first_type(self.object.get("type")) if self.object is not None else None

    @property
    def object_actor(self) -> str | None:
        """The `actor` of an embedded activity (Undo, Accept), if any."""
        return first_id(self.object.get("actor")) if self.object is not None else None


def parse_activity(document: dict[str, Any]) -> ActivityData:
    activity_type = first_type(document.get("type"))
    if activity_type is None:
        raise InvalidObject("the activity has no type")
    actor = first_id(document.get("actor"))
    if actor is None:
        raise InvalidObject("the activity has no actor")
    raw_object = document.get("object")
    if isinstance(raw_object, list):
        raw_object = raw_object[0] if raw_object else None
    embedded = raw_object if isinstance(raw_object, dict) else None
    object_id = first_id(raw_object)
    activity_id = document.get("id")
    reaction = document.get("content")
    if not isinstance(reaction, str):
        reaction = document.get("_misskey_reaction")
    return ActivityData(
        id=activity_id if isinstance(activity_id, str) and activity_id else None,
        type=activity_type,
        actor=actor,
        object_id=object_id,
        object=embedded,
        target_id=first_id(document.get("target")),
        to=addresses(document.get("to")),
        cc=addresses(document.get("cc")),
        content=reaction[:255] if isinstance(reaction, str) and reaction else None,
        emojis=parse_emojis(document.get("tag")),
        published=parse_datetime(document.get("published")),
    )


@dataclass(frozen=True)
class MentionData:
    href: str
    name: str


@dataclass(frozen=True)
class AttachmentData:
    url: str
    media_type: str
    description: str | None
    blurhash: str | None
    width: int | None
    height: int | None
    # Mastodon's focalPoint, each from -1 to 1 (0,0: the centre).
    focus: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class PollData:
    # (title, votes so far) in order.
    options: list[tuple[str, int]]
    multiple: bool
    expires_at: datetime | None
    voters_count: int | None


@dataclass(frozen=True)
class NoteData:
    """A post as received: content already sanitised, addressing and tags flattened."""

    uri: str
    object_type: str
    attributed_to: str
    content_html: str
    summary: str | None
    sensitive: bool
    language: str | None
    url: str | None
    in_reply_to: str | None
    conversation: str | None
    published: datetime | None
    updated: datetime | None
    to: list[str]
    cc: list[str]
    mentions: list[MentionData]
    hashtags: list[str]
    emojis: list[dict[str, Any]]
    attachments: list[AttachmentData]
    poll: PollData | None
    # A poll vote is a Note with a name (the option chosen) and no content, replying to the poll.
    name: str | None

    @property
    def is_vote(self) -> bool:
        return (
            self.object_type == "Note"
            and bool(self.name)
            and self.in_reply_to is not None
            and not self.content_html
            and not self.attachments
        )


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value < 2**31:
        return value
    return None


def _language(document: dict[str, Any]) -> str | None:
    content_map = document.get("contentMap")
    if isinstance(content_map, dict):
        for key in content_map:
            if isinstance(key, str) and len(key) <= 16 and _LANGUAGE_RE.match(key):
                return key
    return None


def _content_html(document: dict[str, Any], object_type: str) -> str:
    content = document.get("content")
    if not isinstance(content, str):
        content_map = document.get("contentMap")
        values = list(content_map.values()) if isinstance(content_map, dict) else []
        content = next((value for value in values if isinstance(value, str)), "")
    content = content[:100_000]
    if document.get("mediaType") == "text/plain":
        content = "<p>" + html.escape(content).replace("\n", "<br>") + "</p>"
    name = text(document.get("name"), 500)
    if object_type in CONVERTED_TYPES:
        # Mastodon shows these as their title and a link to where they can be watched or read.
        url = link_href(document.get("url")) or str(document.get("id"))
        title = html.escape(name) if name else ""
        href = html.escape(url, quote=True)
        return sanitize_remote_html(f'<p>{title}</p><p><a href="{href}">{html.escape(url)}</a></p>')
    if object_type in ("Article", "Page") and name:
        content = f"<p><strong>{html.escape(name)}</strong></p>{content}"
    return sanitize_remote_html(content)


def _mentions_and_hashtags(tags: Any) -> tuple[list[MentionData], list[str]]:
    mentions: list[MentionData] = []
    hashtags: list[str] = []
    for tag in as_list(tags)[:MAX_TAGS]:
        if not isinstance(tag, dict):
            continue
        kind = first_type(tag.get("type"))
        if kind == "Mention":
            href = tag.get("href")
            if isinstance(href, str) and href:
                mentions.append(MentionData(href=href, name=text(tag.get("name"), 255)))
        elif kind == "Hashtag":
            name = text(tag.get("name"), 255).strip().lstrip("#").lower()
            if _HASHTAG_RE.match(name) and name not in hashtags:
                hashtags.append(name)
    return mentions, hashtags


def _attachments(value: Any) -> list[AttachmentData]:
    found: list[AttachmentData] = []
    for item in as_list(value):
        if len(found) >= MAX_ATTACHMENTS:
            break
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict) or first_type(item.get("type")) == "PropertyValue":
            continue
        url = link_href(item.get("url")) or (item.get("href") if isinstance(item.get("href"), str) else None)
        if not url or not url.startswith(("http://", "https://")) or len(url) > 2048:
            continue
        media_type = item.get("mediaType")
        description = item.get("name") or item.get("summary")
        blurhash = item.get("blurhash")
        found.append(
            AttachmentData(
                url=url,
                media_type=media_type[:128] if isinstance(media_type, str) else "",
                description=description[:1500] if isinstance(description, str) and description else None,
                blurhash=blurhash[:255] if isinstance(blurhash, str) and blurhash else None,
                width=_integer(item.get("width")),
                height=_integer(item.get("height")),
                focus=_focal_point(item.get("focalPoint")),
            )
        )
    return found


def _focal_point(value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        return (0.0, 0.0)
    try:
        x, y = (float(part) for part in value)
    except (TypeError, ValueError):
        return (0.0, 0.0)
    if not (-1.0 <= x <= 1.0 and -1.0 <= y <= 1.0):
        return (0.0, 0.0)
    return (x, y)


def _poll(document: dict[str, Any]) -> PollData | None:
    multiple = "anyOf" in document and "oneOf" not in document
    choices = document.get("anyOf") if multiple else document.get("oneOf")
    options: list[tuple[str, int]] = []
    for choice in as_list(choices)[:20]:
        if not isinstance(choice, dict):
            continue
        title = text(choice.get("name"), 200)
        replies = choice.get("replies")
        votes = _integer(replies.get("totalItems")) if isinstance(replies, dict) else None
        options.append((title, votes or 0))
    if not options:
        return None
    expires = parse_datetime(document.get("endTime")) or parse_datetime(document.get("closed"))
    return PollData(
        options=options,
        multiple=multiple,
        expires_at=expires,
        voters_count=_integer(document.get("votersCount")),
    )


def parse_note(document: dict[str, Any]) -> NoteData:
    """A Note, Article, Page or Question (and the types shown as a link: Video, Audio, Image, Event)."""
    uri = document.get("id")
    if not isinstance(uri, str) or not uri:
        raise InvalidObject("the object has no id")
    if len(uri) > MAX_URL_LENGTH:
        raise InvalidObject(f"the object's id is longer than {MAX_URL_LENGTH} characters")
    authority(uri)
    object_type = first_type(document.get("type"))
    if object_type not in POST_TYPES and object_type not in CONVERTED_TYPES:
        raise InvalidObject(f"{object_type!r} is not a kind of post")
    attributed_to = first_id(document.get("attributedTo"))
    if attributed_to is None:
        raise InvalidObject(f"{uri} has no attributedTo")
    mentions, hashtags = _mentions_and_hashtags(document.get("tag"))
    summary = text(document.get("summary"), 5000)
    if "<" in summary:
        summary = html_to_plain_text(summary)
    name = text(document.get("name"), 500) or None
    conversation = document.get("conversation") or document.get("context")
    return NoteData(
        uri=uri,
        object_type=object_type,
        attributed_to=attributed_to,
        content_html=_content_html(document, object_type),
        summary=summary[:1000] or None,
        sensitive=boolean(document.get("sensitive")),
        language=_language(document),
        url=link_href(document.get("url")),
        in_reply_to=first_id(document.get("inReplyTo")),
        conversation=conversation[:2048] if isinstance(conversation, str) else None,
        published=parse_datetime(document.get("published")),
        updated=parse_datetime(document.get("updated")),
        to=addresses(document.get("to")),
        cc=addresses(document.get("cc")),
        mentions=mentions,
        hashtags=hashtags,
        emojis=parse_emojis(document.get("tag")),
        attachments=_attachments(document.get("attachment")),
        poll=_poll(document) if object_type == "Question" else None,
        name=name,
    )


@dataclass(frozen=True)
class FlagData:
    """A report: the accounts and posts it is about (by URI) and the reporter's comment."""

    uri: str | None
    object_ids: list[str]
    comment: str


def parse_flag(document: dict[str, Any]) -> FlagData:
    objects: list[str] = []
    for item in as_list(document.get("object"))[:100]:
        found = first_id(item)
        if found:
            objects.append(found)
    uri = document.get("id")
    return FlagData(
        uri=uri if isinstance(uri, str) and uri else None,
        object_ids=objects,
        comment=html_to_plain_text(text(document.get("content"), 5000))[:1000],
    )
