"""What every inbox handler works with: the activity, its actor, and objects taken from their origin.

Trust follows the origin: an object embedded in an activity is believed when it lives on the
server that signed the delivery; anything else is fetched from its own server, and what that
server answers (with an id on the same origin) is what counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from app.activitypub.fetcher import Fetcher, FetchError
from app.activitypub.parsers import ActivityData, InvalidObject, authority, same_origin
from app.activitypub.resolver import ActorResolver, ResolveError
from app.context import AppContext
from app.models import Account
from app.services.accounts import AccountService
from app.services.batch_writes import WriteBatch
from app.services.read_cache import ReadCache

# An Announce may carry another activity (Lemmy's groups do); that one may not carry a third.
MAX_NESTING = 1


def actor_cache_key(uri: str) -> tuple[str, str]:
    """Where an inbox processor's ReadCache keeps the account of the actor `uri`."""
    return ("actor", uri)


class Ignored(Exception):
    """The activity is understood and deliberately left alone; the message is kept with the inbox item."""


@dataclass
class Inbound:
    context: AppContext
    activity: ActivityData
    # The whole activity as received, for the handlers that read more than the envelope (Flag).
    document: dict[str, Any]
    # The actor authenticated for this activity: the key owner, or the actor whose server served it.
    signer: str
    recipient_account_id: int | None = None
    nesting: int = 0
    # The rows handlers add instead of writing them, committed by the processor for a whole batch.
    writes: WriteBatch = field(default_factory=WriteBatch)
    # The processor's short-lived answers to repeated reads.
    cache: ReadCache | None = None
    _actor: Account | None = field(default=None, repr=False)

    async def actor(self) -> Account:
        """The activity's actor as an account here (cached, or fetched when stale)."""
        if self._actor is None:
            resolver = ActorResolver(self.context)
            uri = self.activity.actor
            try:
                if self.cache is not None:
                    account = await self.cache.get(actor_cache_key(uri), lambda: resolver.fetch_actor(uri))
                else:
                    account = await resolver.fetch_actor(uri)
            except ResolveError as error:
                raise Ignored(f"the actor is not available: {error}") from None
            if account.is_local:
                raise Ignored("the actor is a local account")
            if account.gone_at is not None or account.suspended_at is not None:
                raise Ignored(f"the actor {account.uri} is gone or suspended")
            self._actor = account
        return self._actor

    async def known_actor(self) -> Account | None:
        """The actor as already stored, without fetching (Delete must not wait on a server that may be gone)."""
        account = await ActorResolver(self.context).cached_actor(self.activity.actor)
        return account if account is not None and not account.is_local else None

    def is_local_uri(self, uri: str) -> bool:
        return same_origin(uri, self.context.urls.base)

    async def fetch(self, uri: str) -> dict[str, Any]:
        """`uri` fetched from its own server; its id must be on that server."""
        if self.is_local_uri(uri):
            raise Ignored(f"{uri} would be ours, and we do not know it")
        try:
            host = authority(uri)
        except InvalidObject as error:
            raise Ignored(str(error)) from None
        if await self.context.domain_policy.suspending(host) is not None:
            raise Ignored(f"{host} is blocked")
        fetcher = Fetcher(self.context, signer=await AccountService(self.context).instance_actor())
        document = await _fetch_from_origin(fetcher, uri)
        found = document.get("id")
        if found == uri:
            return document
        if not isinstance(found, str) or not same_origin(found, uri):
            raise Ignored(f"{uri} answered with a document whose id is {found!r}")
        # Served under another URL than its id (a media upload dressed as a post, say): only what
        # its declared id serves is believed, as Mastodon does.
        document = await _fetch_from_origin(fetcher, found)
        if document.get("id") != found:
            raise Ignored(f"{found} answered with a document whose id is {document.get('id')!r}")
        return document

    async def object_document(self, *, on_actor_origin: bool) -> dict[str, Any]:
        """The activity's object: the embedded copy when the signer's server vouches for it, else fetched.

        With `on_actor_origin` (Create, Update), the object must live on the actor's own server.
        """
        activity = self.activity
        uri = activity.object_id
        if uri is None:
            raise Ignored("the activity has no object")
        if on_actor_origin and not same_origin(uri, activity.actor):
            raise Ignored(f"the object {uri} is not on the server of its actor {activity.actor}")
        embedded = activity.object
        if embedded is not None and embedded.get("id") == uri and same_origin(uri, self.signer):
            return embedded
        return await self.fetch(uri)


async def _fetch_from_origin(fetcher: Fetcher, uri: str) -> dict[str, Any]:
    try:
        fetched = await fetcher.fetch(uri)
    except FetchError as error:
        raise Ignored(f"could not fetch {uri}: {error}") from None
    if not same_origin(fetched.url, uri):
        raise Ignored(f"{uri} redirected to {fetched.url}, on another server")
    return fetched.document


async def local_account(context: AppContext, uri: str | None) -> Account | None:
    """The live local account whose actor URI is `uri`."""
    if not uri:
        return None
    async with context.sessions() as session:
        return await session.scalar(
            select(Account).where(
                col(Account.uri) == uri, col(Account.domain).is_(None), col(Account.deleted_at).is_(None)
            )
        )
