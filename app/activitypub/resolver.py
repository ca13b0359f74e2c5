"""Finding remote actors: by URL, or by @user@domain through WebFinger; cached as Account rows."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from app.activitypub.addresses import hostname_problem
from app.activitypub.fetcher import JRD_ACCEPT, Fetcher, FetchError, RemoteGone
from app.activitypub.parsers import ActorData, InvalidObject, authority, parse_actor, same_origin
from app.config import host_without_port
from app.context import AppContext
from app.models import Account
from app.models.base import utcnow
from app.services import events
from app.services.accounts import AccountService
from app.services.remote_emojis import keep_copies

ACTOR_MAX_AGE = timedelta(hours=24)
# user@host, where host may carry a port (127.0.0.2:9100) or be an IPv6 literal in brackets.
HANDLE_RE = re.compile(
    r"^@?(?P<user>[^@\s/]+)@(?P<domain>[A-Za-z0-9.\-]+(?::\d{1,5})?|\[[0-9A-Fa-f:.]+\](?::\d{1,5})?)$"
)


class ResolveError(Exception):
    """An actor that could not be found or used; the message is meant for the person who asked.

    `unreachable` (a host) and `missing` (a handle) say which of the two common cases it is, so
    the web pages can say it in the reader's language.
    """

    def __init__(self, message: str, *, unreachable: str | None = None, missing: str | None = None) -> None:
        super().__init__(message)
        self.unreachable = unreachable
        self.missing = missing


class ResolveUnavailable(ResolveError):
    """The actor's server did not answer usably this time (down, timed out, an error): asking
    again later may work, unlike a gone or unusable actor."""


def parse_handle(handle: str) -> tuple[str, str]:
    match = HANDLE_RE.match(handle.strip().removeprefix("acct:"))
    if not match:
        raise ResolveError(f"{handle!r} is not a handle like @user@example.org")
    domain = match["domain"].lower()
    # A typo ("mastodon..social") is refused here, not by the DNS resolver deep in a fetch.
    problem = hostname_problem(host_without_port(domain))
    if problem is not None:
        raise ResolveError(f"{handle!r} is not a handle: its domain {problem}")
    return match["user"], domain


def parse_account_name(value: str, local_domains: tuple[str, ...]) -> tuple[str, str | None]:
    """`alice`, `@alice` or `@alice@LOCAL_DOMAIN` → ("alice", None); `@bob@remote.example` →
    ("bob", "remote.example"). How a person names an account, short for this server's own."""
    text = value.strip().removeprefix("acct:")
    bare = text.removeprefix("@")
    if bare and "@" not in bare:
        # The user part of a handle, as HANDLE_RE takes it: no @, no space, no slash.
        if any(char.isspace() or char == "/" for char in bare):
            raise ResolveError(f"{value!r} is not a handle like @user or @user@example.org")
        return bare, None
    username, domain = parse_handle(text)
    return (username, None) if domain in local_domains else (username, domain)


class ActorResolver:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def _fetcher(self) -> Fetcher:
        return Fetcher(self.context, signer=await AccountService(self.context).instance_actor())

    async def resolve(self, handle_or_url: str) -> Account:
        value = handle_or_url.strip()
        if value.startswith(("http://", "https://")):
            return await self.fetch_actor(value)
        return await self.resolve_handle(value)

    async def resolve_handle(self, handle: str, *, refresh: bool = False) -> Account:
        username, domain = parse_handle(handle)
        if domain in (self.context.settings.local_domain, self.context.settings.web_domain):
            account = await AccountService(self.context).get_local_account(username)
            if account is None:
                raise ResolveError(f"there is no local account named {username!r}")
            return account
        if not refresh:
            cached = await self.cached_handle(username, domain)
            if cached is not None and self._fresh(cached):
                return cached
        actor_uri, subject = await self._webfinger(username, domain)
        # Mastodon's round-trip rule: when the server names the account differently (another case,
        # or handles on a main domain it redirects from), that name must lead back to the same actor.
        handle_user, handle_domain = subject or (username, domain)
        if (handle_user.lower(), handle_domain) != (username.lower(), domain):
            confirmed, _ = await self._webfinger(handle_user, handle_domain)
            if confirmed != actor_uri:
                raise ResolveError(f"@{username}@{domain} points at {actor_uri}, which does not confirm it")
        actor_host = authority(actor_uri)
        if actor_host == handle_domain:
            return await self.fetch_actor(actor_uri, refresh=refresh, handle_domain=handle_domain)
        # The handle's domain points at an actor on another host (handles on a main domain, or a
        # spoof): only the actor's own server can vouch for it, as Mastodon asks it too.
        account = await self.fetch_actor(actor_uri, refresh=refresh)
        vouched_uri, vouched = await self._webfinger(account.username, actor_host)
        if (
            vouched_uri != actor_uri
            or vouched is None
            or (vouched[0].lower(), vouched[1]) != (handle_user.lower(), handle_domain)
        ):
            raise ResolveError(f"{actor_uri} does not confirm the handle @{handle_user}@{handle_domain}")
        if account.domain != handle_domain:
            async with self.context.sessions() as session:
                stored = await session.get(Account, account.id)
                assert stored is not None
                stored.domain = handle_domain
                await session.commit()
                account = stored
        return account

    async def cached_handle(self, username: str, domain: str) -> Account | None:
        async with self.context.sessions() as session:
            return await session.scalar(
                select(Account)
                .where(func.lower(Account.username) == username.lower(), Account.domain == domain)
                .order_by(col(Account.fetched_at).desc())
                .limit(1)
            )

    async def _webfinger(self, username: str, domain: str) -> tuple[str, tuple[str, str] | None]:
        """The actor id WebFinger gives for user@domain, and the handle its `subject` names (if any)."""
        resource = quote(f"acct:{username}@{domain}", safe=":@")
        url = f"{self.context.settings.scheme}://{domain}/.well-known/webfinger?resource={resource}"
        fetcher = Fetcher(self.context)
        try:
            document = await fetcher.get_json(url, accept=JRD_ACCEPT, signed=False)
        except FetchError as error:
            if error.status == 404:
                handle = f"@{username}@{domain}"
                raise ResolveError(f"{handle} does not exist", missing=handle) from None
            if error.unreachable:
                raise ResolveError(str(error), unreachable=error.unreachable) from None
            raise ResolveError(f"could not look up @{username}@{domain}: {error}") from None
        subject: tuple[str, str] | None = None
        if isinstance(document.get("subject"), str):
            try:
                subject = parse_handle(document["subject"])
            except ResolveError:
                subject = None
        links = document.get("links")
        for link in links if isinstance(links, list) else []:
            if (
                isinstance(link, dict)
                and link.get("rel") == "self"
                and isinstance(link.get("href"), str)
                and str(link.get("type", "")).split(";")[0].strip()
                in ("application/activity+json", "application/ld+json")
            ):
                return str(link["href"]), subject
        raise ResolveError(f"@{username}@{domain} has no ActivityPub actor")

    def _fresh(self, account: Account) -> bool:
        return account.fetched_at is not None and utcnow() - account.fetched_at < ACTOR_MAX_AGE

    async def cached_actor(self, uri: str) -> Account | None:
        async with self.context.sessions() as session:
            return await session.scalar(select(Account).where(Account.uri == uri))

    async def usable_actors(self, uris: Iterable[str]) -> dict[str, Account]:
        """Those of `uris` that `fetch_actor` would answer from the database without fetching
        (local, or fetched recently enough), by uri: one query for a whole batch of the inbox."""
        wanted = sorted(set(uris))
        if not wanted:
            return {}
        async with self.context.sessions() as session:
            found = (await session.scalars(select(Account).where(col(Account.uri).in_(wanted)))).all()
        return {account.uri: account for account in found if account.is_local or self._fresh(account)}

    async def fetch_actor(
        self,
        uri: str,
        *,
        refresh: bool = False,
        handle_domain: str | None = None,
        cached_when_unavailable: bool = True,
    ) -> Account:
        """The actor at `uri`, from the cache when fresh, else fetched.

        Its `id` must be the URL asked for, and the URL it finally came from (after redirects) must
        be on the same origin: otherwise an open redirect would let any host speak for another.
        `handle_domain` is the domain of its handle when WebFinger confirmed one (it may differ
        from the host serving the actor); otherwise a known account keeps the domain it had.
        When the server does not answer, a known account is returned as it is, unless
        `cached_when_unavailable` is False (a refresh that should be tried again later).
        """
        cached = await self.cached_actor(uri)
        if cached is not None and (cached.is_local or (not refresh and self._fresh(cached))):
            return cached
        fetcher = await self._fetcher()
        try:
            # Signed always, as Mastodon does: a server in secure mode answers an unsigned GET
            # with a minimal actor (no name, no collections) that must not be stored as the actor.
            fetched = await fetcher.fetch(uri, signed=True)
        except RemoteGone:
            if cached is not None:
                await self.mark_gone(cached)
            raise ResolveError(f"{uri} is gone") from None
        except FetchError as error:
            if cached is not None and cached_when_unavailable:
                return cached
            raise ResolveUnavailable(str(error), unreachable=error.unreachable) from None
        document = fetched.document
        if document.get("id") != uri:
            raise ResolveError(f"{uri} served a document whose id is {document.get('id')!r}")
        if not same_origin(fetched.url, uri):
            raise ResolveError(f"{uri} redirected to {fetched.url}, another origin")
        try:
            data = parse_actor(document)
        except InvalidObject as error:
            raise ResolveError(f"{uri} is not a usable actor: {error}") from None
        if handle_domain is not None:
            data.domain = handle_domain
        elif cached is not None and cached.domain:
            data.domain = cached.domain
        return await self.store_actor(data)

    async def store_actor(self, data: ActorData) -> Account:
        if authority(data.inbox_url) != authority(data.uri):
            # An actor may not direct deliveries to another server's inbox.
            raise ResolveError(f"{data.uri} names an inbox on another server")
        for attempt in range(2):
            async with self.context.sessions() as session:
                account = await session.scalar(select(Account).where(Account.uri == data.uri))
                if account is None:
                    account = Account(uri=data.uri, username=data.username, domain=data.domain)
                else:
                    # Pages showing it (a reply under a public post) show its new name and picture.
                    events.announce(session, [events.AccountChanged(account.id)])
                _apply(account, data)
                session.add(account)
                try:
                    await session.commit()
                    return account
                except IntegrityError:
                    # Someone stored the same actor at the same moment; update theirs.
                    if attempt:
                        raise
        raise AssertionError("unreachable")

    async def mark_gone(self, account: Account) -> None:
        async with self.context.sessions() as session:
            stored = await session.get(Account, account.id)
            if stored is not None and stored.gone_at is None:
                stored.gone_at = utcnow()
                session.add(stored)
                await session.commit()


def _apply(account: Account, data: ActorData) -> None:
    account.username = data.username
    account.domain = data.domain
    account.actor_type = data.actor_type
    account.display_name = data.display_name
    account.summary_html = data.summary_html
    account.url = data.url
    account.inbox_url = data.inbox_url
    account.shared_inbox_url = data.shared_inbox_url
    account.outbox_url = data.outbox_url
    account.followers_url = data.followers_url
    account.following_url = data.following_url
    account.featured_url = data.featured_url
    if data.key is not None:
        account.key_id = data.key.key_id
        account.public_key_pem = data.key.public_key_pem
    account.manually_approves_followers = data.manually_approves_followers
    account.discoverable = data.discoverable
    account.indexable = data.indexable
    account.avatar_url = data.avatar_url
    account.header_url = data.header_url
    account.fields = data.fields
    account.also_known_as = data.also_known_as
    account.moved_to_uri = data.moved_to_uri
    account.emojis = keep_copies(account.emojis or [], data.emojis)
    account.fetched_at = utcnow()
    account.updated_at = utcnow()
    account.gone_at = None
