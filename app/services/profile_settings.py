"""A local account's own profile: name, bio, fields, pictures, locked state, aliases; a login's language.

Pictures go through the media pipeline (app.services.image_processing) in a worker thread (never
on the event loop) and are re-encoded, so what is served is always a plain PNG or JPEG of a known
size without metadata, whatever was uploaded.
Links in profile fields are verified the way Mastodon does: the linked page must link back to the
profile with `rel="me"`.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx
from sqlmodel import col, select

from app.activitypub.resolver import ActorResolver, ResolveError
from app.context import AppContext
from app.federation.publisher import Publisher
from app.i18n import supported
from app.models import Account, ActorType, User
from app.models.base import utcnow
from app.services import events
from app.services.errors import Forbidden, Invalid
from app.services.html_sanitizer import html_to_plain_text
from app.services.image_processing import AVATAR_SIZE, HEADER_SIZE, MediaInvalid, fit_picture
from app.services.text_format import URL_RE, render_plain_text
from app.services.viewer import Viewer

MAX_DISPLAY_NAME = 100
MAX_BIO = 2_000
MAX_FIELDS = 4
MAX_FIELD_NAME = 255
MAX_FIELD_VALUE = 2_047
MAX_ALIASES = 10
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
# The store's folder of local accounts' avatars and headers.
PROFILE_FOLDER = "profiles"
VERIFY_TIMEOUT = 5.0
VERIFY_MAX_BYTES = 1024 * 1024

ProfileHook = Callable[[Account], Awaitable[None]]


class ProfileError(Invalid):
    """Profile input that cannot be stored; the message is meant for the person editing."""


@dataclass(frozen=True)
class ProfileChanges:
    display_name: str
    # Plain text, rendered to HTML like a post (links, hashtags).
    bio: str
    # (name, value) pairs; empty pairs are dropped.
    fields: Sequence[tuple[str, str]] = ()
    locked: bool = False
    discoverable: bool = True
    # Handles (@user@domain) or actor URLs of this account's other identities.
    aliases: Sequence[str] = ()
    # None keeps what is stored (the web form has no such boxes; the client API does).
    bot: bool | None = None
    indexable: bool | None = None


# Mastodon's audiences → Herold's (a post's default audience, as the client API names it).
POSTING_PRIVACY = {"public": "public", "unlisted": "unlisted", "private": "followers", "direct": "direct"}
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class PostingDefaults:
    """What a login's new posts start with (Mastodon's `source`); None keeps what is stored."""

    privacy: str | None = None
    sensitive: bool | None = None
    # An ISO 639 code; "" forgets the default.
    language: str | None = None


@dataclass(frozen=True)
class ProfileForm:
    """What the settings form shows: the stored profile, turned back into the text that was typed."""

    display_name: str
    bio: str
    fields: list[tuple[str, str, bool]] = field(default_factory=list)
    locked: bool = False
    discoverable: bool = True
    aliases: list[str] = field(default_factory=list)


class ProfileSettingsService:
    def __init__(
        self, context: AppContext, *, on_change: ProfileHook | None = None, viewer: Viewer | None = None
    ) -> None:
        """`on_change` runs after every stored change, to tell followers (an Update of the actor).
        `viewer` is who asks (None: the server itself or the command line): only someone who may
        act as an account changes its profile."""
        self.context = context
        self.viewer = viewer if viewer is not None else Viewer.system()
        self.on_change = on_change

    def form(self, account: Account) -> ProfileForm:
        return ProfileForm(
            display_name=account.display_name,
            bio=html_to_plain_text(account.summary_html),
            fields=[
                (
                    str(item.get("name", "")),
                    html_to_plain_text(str(item.get("value", ""))),
                    bool(item.get("verified_at")),
                )
                for item in account.fields
            ],
            locked=account.manually_approves_followers,
            discoverable=account.discoverable,
            aliases=list(account.also_known_as),
        )

    async def update(self, account_id: int, changes: ProfileChanges) -> Account:
        self.viewer.require_act_as(account_id)
        display_name = " ".join(changes.display_name.split())
        if len(display_name) > MAX_DISPLAY_NAME:
            raise ProfileError(f"the display name may have at most {MAX_DISPLAY_NAME} characters")
        bio = changes.bio.strip()
        if len(bio) > MAX_BIO:
            raise ProfileError(f"the bio may have at most {MAX_BIO} characters")
        pairs = [
            (name.strip(), value.strip()) for name, value in changes.fields if name.strip() or value.strip()
        ]
        if len(pairs) > MAX_FIELDS:
            raise ProfileError(f"a profile has at most {MAX_FIELDS} fields")
        for name, value in pairs:
            if not name or not value:
                raise ProfileError("every profile field needs both a label and a content")
            if len(name) > MAX_FIELD_NAME or len(value) > MAX_FIELD_VALUE:
                raise ProfileError(
                    f"field labels may have {MAX_FIELD_NAME} and contents {MAX_FIELD_VALUE} characters"
                )
        aliases = await self._resolve_aliases(changes.aliases)
        account = await self._load(account_id)
        previous = {str(item.get("value", "")): item.get("verified_at") for item in account.fields}
        fields: list[dict[str, Any]] = []
        for name, value in pairs:
            html = field_value_html(value, hashtag_href=self.context.urls.tag)
            item: dict[str, Any] = {"name": name, "value": html}
            if previous.get(html):
                item["verified_at"] = previous[html]
            fields.append(item)
        fields = await self._verify(account, fields)
        async with self.context.sessions() as session:
            stored = await session.get(Account, account_id)
            assert stored is not None
            stored.display_name = display_name or stored.username
            stored.summary_html = render_plain_text(bio, mention_hrefs={}, hashtag_href=self.context.urls.tag)
            stored.fields = fields
            stored.manually_approves_followers = changes.locked
            stored.discoverable = changes.discoverable
            if changes.indexable is not None:
                stored.indexable = changes.indexable
            # A bot is a Service actor, as Mastodon marks it; organisation accounts stay what they are.
            if changes.bot is not None and stored.actor_type in (ActorType.PERSON, ActorType.SERVICE):
                stored.actor_type = ActorType.SERVICE if changes.bot else ActorType.PERSON
            stored.also_known_as = aliases
            stored.updated_at = utcnow()
            session.add(stored)
            await session.commit()
            await session.refresh(stored)
        await self._changed(stored)
        return stored

    async def set_picture(self, account_id: int, kind: str, data: bytes) -> Account:
        self.viewer.require_act_as(account_id)
        """Store a new avatar or header ("avatar" / "header") from uploaded bytes."""
        if kind not in ("avatar", "header"):
            raise ProfileError("unknown picture kind")
        if not data:
            raise ProfileError("the uploaded file is empty")
        if len(data) > MAX_UPLOAD_BYTES:
            raise ProfileError(f"pictures may be at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        size = AVATAR_SIZE if kind == "avatar" else HEADER_SIZE
        encoded, extension = await asyncio.to_thread(process_image, data, size)
        account = await self._load(account_id)
        key = f"{PROFILE_FOLDER}/{account.id}-{kind}-{secrets.token_hex(8)}.{extension}"
        try:
            await self.context.media.put(key, encoded)
        except OSError as error:
            raise ProfileError(f"the picture could not be stored: {error.strerror or error}") from None
        url = self.context.media.url(key)
        async with self.context.sessions() as session:
            stored = await session.get(Account, account_id)
            assert stored is not None
            old = stored.avatar_url if kind == "avatar" else stored.header_url
            if kind == "avatar":
                stored.avatar_url = url
            else:
                stored.header_url = url
            stored.updated_at = utcnow()
            session.add(stored)
            await session.commit()
            await session.refresh(stored)
        await self._remove_own_file(old)
        await self._changed(stored)
        return stored

    async def remove_picture(self, account_id: int, kind: str) -> Account:
        self.viewer.require_act_as(account_id)
        async with self.context.sessions() as session:
            stored = await session.get(Account, account_id)
            if stored is None:
                raise ProfileError("this account no longer exists")
            old = stored.avatar_url if kind == "avatar" else stored.header_url
            if kind == "avatar":
                stored.avatar_url = None
            else:
                stored.header_url = None
            stored.updated_at = utcnow()
            session.add(stored)
            await session.commit()
            await session.refresh(stored)
        await self._remove_own_file(old)
        await self._changed(stored)
        return stored

    async def set_locale(self, user_id: int, locale: str | None) -> None:
        if not self.viewer.is_system and (self.viewer.user is None or self.viewer.user.id != user_id):
            raise Forbidden("only you choose your own language")
        chosen = supported(locale) if locale else None
        if locale and chosen is None:
            raise ProfileError(f"{locale!r} is not a language this server speaks")
        async with self.context.sessions() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise ProfileError("this login no longer exists")
            user.locale = chosen
            session.add(user)
            await session.commit()

    async def set_posting_defaults(self, user_id: int, defaults: PostingDefaults) -> User:
        """A login's posting defaults; nothing is sent (they are not part of the profile)."""
        if not self.viewer.is_system and (self.viewer.user is None or self.viewer.user.id != user_id):
            raise Forbidden("only you choose your own posting defaults")
        if defaults.privacy is not None and defaults.privacy not in POSTING_PRIVACY.values():
            raise ProfileError(f"privacy: must be one of {', '.join(POSTING_PRIVACY)}")
        language = defaults.language.strip().lower() if defaults.language is not None else None
        if language and not LANGUAGE_RE.match(language):
            raise ProfileError("language: must be an ISO 639 language code such as 'en'")
        async with self.context.sessions() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise ProfileError("this login no longer exists")
            if defaults.privacy is not None:
                user.default_privacy = defaults.privacy
            if defaults.sensitive is not None:
                user.default_sensitive = defaults.sensitive
            if language is not None:
                user.default_language = language or None
            session.add(user)
            await session.commit()
            await session.refresh(user)
        return user

    async def _load(self, account_id: int) -> Account:
        async with self.context.sessions() as session:
            account = await session.get(Account, account_id)
        if account is None or account.domain is not None:
            raise ProfileError("this account no longer exists")
        return account

    async def _changed(self, account: Account) -> None:
        """Followers' servers learn of the new profile from an Update of the actor, as Mastodon sends."""
        async with self.context.sessions() as session:
            # Whatever shows the account (kept API entities, cached pages) drops what it made of it.
            events.announce(session, [events.AccountChanged(account.id)])
            await Publisher(self.context).profile_updated(session, account)
            await session.commit()
        if self.on_change is not None:
            await self.on_change(account)

    async def _resolve_aliases(self, entries: Sequence[str]) -> list[str]:
        wanted = [entry.strip() for entry in entries if entry.strip()]
        if len(wanted) > MAX_ALIASES:
            raise ProfileError(f"an account may have at most {MAX_ALIASES} aliases")
        async with self.context.sessions() as session:
            known = set(
                (await session.scalars(select(Account.uri).where(col(Account.uri).in_(wanted)))).all()
            )
        resolver = ActorResolver(self.context)
        uris: list[str] = []
        for entry in wanted:
            if entry in known:
                uris.append(entry)
                continue
            try:
                uris.append((await resolver.resolve(entry)).uri)
            except ResolveError as error:
                raise ProfileError(f"the alias {entry} could not be found: {error}") from None
            except Exception as error:  # a network failure is the user's input problem here, not a 500
                raise ProfileError(f"the alias {entry} could not be looked up: {error}") from None
        return list(dict.fromkeys(uris))

    async def _verify(self, account: Account, fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Mark fields whose link points at a page that links back to this profile with rel="me"."""
        targets = {account.url or "", account.uri, self.context.urls.profile_page(account.username)} - {""}

        async def check(item: dict[str, Any]) -> dict[str, Any]:
            href = single_link(str(item["value"]))
            if href is None or item.get("verified_at"):
                return item
            if await links_back(self.context.http, href, targets):
                return {**item, "verified_at": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")}
            return item

        return list(await asyncio.gather(*(check(item) for item in fields)))

    async def _remove_own_file(self, url: str | None) -> None:
        key = self.context.media.key_of_url(url)
        if key is not None and key.startswith(f"{PROFILE_FOLDER}/"):
            await self.context.media.delete(key)


def field_value_html(value: str, *, hashtag_href: Callable[[str], str]) -> str:
    """A field's content as HTML: one line, links marked rel="me" so the other side can verify us."""
    html = render_plain_text(value.replace("\n", " "), mention_hrefs={}, hashtag_href=hashtag_href)
    html = html.removeprefix("<p>").removesuffix("</p>")
    return html.replace('rel="nofollow noopener noreferrer"', 'rel="me nofollow noopener noreferrer"')


_HREF_RE = re.compile(r'<a href="([^"]+)"')


def single_link(html: str) -> str | None:
    """The link target of a field that is exactly one https link (only those are verified)."""
    links = _HREF_RE.findall(html)
    text = html_to_plain_text(html).strip()
    if len(links) != 1 or not URL_RE.fullmatch(text):
        return None
    return links[0].replace("&amp;", "&")


class _RelMeParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("a", "link"):
            return
        values = {name.lower(): value or "" for name, value in attrs}
        if "me" in values.get("rel", "").lower().split() and values.get("href"):
            self.hrefs.add(values["href"].strip())


async def links_back(client: httpx.AsyncClient, url: str, targets: set[str]) -> bool:
    try:
        async with client.stream(
            "GET", url, headers={"Accept": "text/html"}, timeout=VERIFY_TIMEOUT, follow_redirects=True
        ) as response:
            if response.status_code != 200:
                return False
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > VERIFY_MAX_BYTES:
                    break
    except Exception:  # any failure to fetch means "not verified", never an error for the editor
        return False
    parser = _RelMeParser()
    try:
        parser.feed(body.decode("utf-8", errors="replace"))
    except Exception:
        return False
    return bool(parser.hrefs & targets)


def process_image(data: bytes, size: tuple[int, int]) -> tuple[bytes, str]:
    """An avatar or header through the media pipeline (checked before decoding, oriented, stripped
    of metadata, cropped to fill `size`). Blocking."""
    try:
        return fit_picture(data, size)
    except MediaInvalid as error:
        raise ProfileError(error.message) from None
