"""Who signed a request: the key named by its signature, looked up or fetched, and the RSA check.

Keys live with the remote actor (Account.key_id / public_key_pem). An unknown key is fetched
from its keyId URL, unsigned first and signed by the instance actor when the server insists
(authorized fetch). Both an actor document and a separate key document (GoToSocial) are
understood; either way the key's owner must be an actor on the key's origin that lists the key.

Fetching is guarded three ways:
- concurrent requests for one unknown key share a single fetch (a burst of deliveries from a
  new server costs one round trip);
- a key that fails to verify is refetched once (the actor may have rotated it), and at most once
  per KEY_REFRESH_INTERVAL per key, so a forger cannot make us hammer the origin;
- our own fetches never require anything from the other side but our public actor document,
  which is served unsigned, so two servers fetching each other's keys cannot wait on each other.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from starlette.requests import Request

from app.activitypub.fetcher import Fetcher, FetchError, RemoteGone
from app.activitypub.parsers import (
    ACTOR_TYPES,
    MAX_URL_LENGTH,
    InvalidObject,
    authority,
    first_type,
    parse_actor,
    parse_key,
    same_origin,
    strip_fragment,
)
from app.activitypub.resolver import ActorResolver, ResolveError
from app.activitypub.signatures import SignatureError, SignedRequest, parse_signed_request
from app.config import Settings
from app.context import AppContext
from app.models import Account
from app.models.base import utcnow
from app.services.accounts import AccountService

# A key that does not verify is refetched at most this often (key rotation, not a forger's lever).
KEY_REFRESH_INTERVAL = timedelta(minutes=5)
# Keys found are remembered in memory this long, so a busy inbox rarely asks the database.
MEMORY_TTL_SECONDS = 60.0
# An unknown key that could not be fetched is not tried again for this long.
FAILURE_TTL_SECONDS = 60.0
MEMORY_ENTRIES = 10_000
# Key fetches of this process in flight at once: a burst of first contacts (a viral post, a
# thousand new followers) would otherwise open a connection per new server at the same moment,
# past the fetch pool and the open-file limit. Each fetch takes one slot for its whole fetch.
KEY_FETCHES_IN_FLIGHT = 64
# How long a request waits for a slot before it is answered 503 with Retry-After.
KEY_FETCH_SLOT_WAIT = 5.0


class VerificationError(Exception):
    """The request's signature cannot be accepted; the message is the precise reason (a 401 body)."""


class KeyFetchesBusy(Exception):
    """Too many key fetches waiting: the request is to be retried later (503), nothing is wrong
    with its signature."""


def read_signature(request: Request, settings: Settings, body: bytes | None) -> SignedRequest:
    """The signature of an incoming request, checked for everything but the key (raises
    SignatureError).

    The path and query are taken as they came over the wire, and the authority is the one we
    answer as, not the Host header: a request signed for another server cannot be replayed here.
    """
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else request.url.path
    return parse_signed_request(
        method=request.method,
        path=path.split("?", 1)[0],
        query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=request.headers,
        body=body,
        now=utcnow(),
        host=settings.web_domain,
        scheme=settings.scheme,
    )


@dataclass(frozen=True, slots=True)
class SignerKey:
    key_id: str
    # The actor that owns the key, and so the one who signed.
    owner: str
    public_key_pem: str
    fetched_at: datetime | None


class _Expiring:
    """A small LRU whose entries expire; per verifier instance, never shared between apps."""

    def __init__(self, ttl: float, limit: int) -> None:
        self._ttl = ttl
        self._limit = limit
        self._entries: OrderedDict[str, tuple[float, object]] = OrderedDict()

    def get(self, key: str) -> object | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: str, value: object) -> None:
        self._entries[key] = (time.monotonic() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)

    def pop(self, key: str) -> None:
        self._entries.pop(key, None)


class RequestVerifier:
    """One per running instance (it holds the in-flight fetches and the small memory cache)."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self._inflight: dict[str, asyncio.Future[SignerKey]] = {}
        self._known = _Expiring(MEMORY_TTL_SECONDS, MEMORY_ENTRIES)
        self._failed = _Expiring(FAILURE_TTL_SECONDS, MEMORY_ENTRIES)
        self._refreshed = _Expiring(KEY_REFRESH_INTERVAL.total_seconds(), MEMORY_ENTRIES)
        self._fetch_slots = asyncio.Semaphore(KEY_FETCHES_IN_FLIGHT)

    async def known_key(self, key_id: str) -> SignerKey | None:
        """The key as we already hold it (memory, then the stored actor), without fetching anything."""
        found = self._known.get(key_id)
        if isinstance(found, SignerKey):
            return found
        async with self.context.sessions() as session:
            rows = await session.execute(
                select(Account.uri, Account.public_key_pem, Account.fetched_at)
                .where(
                    col(Account.key_id) == key_id,
                    col(Account.gone_at).is_(None),
                    col(Account.public_key_pem) != "",
                )
                .order_by(col(Account.fetched_at).desc())
                .limit(5)
            )
            candidates = rows.all()
        for owner, pem, fetched_at in candidates:
            # An actor document may name any keyId; only an owner on the key's origin is believed.
            if same_origin(owner, key_id):
                key = SignerKey(key_id=key_id, owner=owner, public_key_pem=pem, fetched_at=fetched_at)
                self._known.put(key_id, key)
                return key
        return None

    async def verify(self, signed: SignedRequest, known: SignerKey | None = None) -> SignerKey:
        """The key that made `signed`, fetching it when unknown; VerificationError says why not."""
        key = known or await self.known_key(signed.key_id)
        fresh = False
        if key is None:
            key = await self.fetch_key(signed.key_id)
            fresh = True
        if self._verifies(signed, key):
            return key
        if fresh or not self._may_refresh(key):
            raise VerificationError(f"signature does not verify with the key {signed.key_id}")
        # Perhaps the actor rotated its key: look once more at the origin.
        self._refreshed.put(signed.key_id, True)
        self._known.pop(signed.key_id)
        refreshed = await self.fetch_key(signed.key_id, again=True)
        if refreshed.public_key_pem != key.public_key_pem and self._verifies(signed, refreshed):
            return refreshed
        raise VerificationError(f"signature does not verify with the key {signed.key_id}")

    def _verifies(self, signed: SignedRequest, key: SignerKey) -> bool:
        try:
            public_key = self.context.keys.public_key(key.public_key_pem)
        except SignatureError:
            return False
        return signed.verify(public_key)

    def _may_refresh(self, key: SignerKey) -> bool:
        if self._refreshed.get(key.key_id) is not None:
            return False
        return key.fetched_at is None or utcnow() - key.fetched_at >= KEY_REFRESH_INTERVAL

    async def fetch_key(self, key_id: str, *, again: bool = False) -> SignerKey:
        """Fetch `key_id` from its origin; concurrent callers for the same key share one fetch.

        `again` asks for a new fetch even when one has just finished (the key may have rotated)."""
        failure = self._failed.get(key_id)
        if isinstance(failure, str):
            raise VerificationError(failure)
        pending = self._inflight.get(key_id)
        if pending is None:
            # A fetch for it may have finished while this caller was looking in the database.
            just_fetched = None if again else self._known.get(key_id)
            if isinstance(just_fetched, SignerKey):
                return just_fetched
            pending = asyncio.ensure_future(self._fetch_and_remember(key_id))
            self._inflight[key_id] = pending
            pending.add_done_callback(lambda _done: self._inflight.pop(key_id, None))
        # Shielded: one caller giving up (its client hung up) must not cancel the others' fetch.
        return await asyncio.shield(pending)

    async def _fetch_and_remember(self, key_id: str) -> SignerKey:
        try:
            async with asyncio.timeout(KEY_FETCH_SLOT_WAIT):
                await self._fetch_slots.acquire()
        except TimeoutError:
            raise KeyFetchesBusy(f"{KEY_FETCHES_IN_FLIGHT} key fetches in flight; retry later") from None
        try:
            key = await self._fetch(key_id)
        except VerificationError as error:
            self._failed.put(key_id, str(error))
            raise
        finally:
            self._fetch_slots.release()
        self._failed.pop(key_id)
        self._known.put(key_id, key)
        return key

    async def _fetch(self, key_id: str) -> SignerKey:
        if len(key_id) > MAX_URL_LENGTH:
            raise VerificationError(f"keyId is longer than {MAX_URL_LENGTH} characters")
        try:
            authority(key_id)
        except InvalidObject:
            raise VerificationError(f"keyId {key_id!r} is not an http(s) URL") from None
        context = self.context
        fetcher = Fetcher(context, signer=await AccountService(context).instance_actor())
        resolver = ActorResolver(context)
        try:
            fetched = await fetcher.fetch(key_id)
        except RemoteGone:
            await self._mark_gone(strip_fragment(key_id))
            raise VerificationError(f"the key {key_id} is gone (410)") from None
        except FetchError as error:
            raise VerificationError(f"could not fetch the key {key_id}: {error}") from None
        if not same_origin(fetched.url, key_id):
            raise VerificationError(f"the key {key_id} redirected to {fetched.url}, on another server")
        document = fetched.document

        if first_type(document.get("type")) in ACTOR_TYPES:
            if document.get("id") != strip_fragment(key_id):
                raise VerificationError(
                    f"keyId {key_id} leads to the actor {document.get('id')!r}, not to its owner"
                )
            try:
                data = parse_actor(document)
            except InvalidObject as error:
                raise VerificationError(f"the key owner is not a usable actor: {error}") from None
            if data.key is None or data.key.key_id != key_id:
                raise VerificationError(f"the actor {data.uri} does not list the key {key_id}")
            try:
                account = await resolver.store_actor(data)
            except ResolveError as error:
                raise VerificationError(str(error)) from None
        else:
            # A separate key document (GoToSocial): its owner must be an actor that lists it.
            standalone = parse_key(document)
            if standalone is None or standalone.key_id != key_id or not standalone.owner:
                raise VerificationError(f"keyId {key_id} does not lead to a public key or an actor")
            if not same_origin(standalone.owner, key_id):
                raise VerificationError(f"the key {key_id} claims an owner on another server")
            try:
                account = await resolver.fetch_actor(standalone.owner, refresh=True)
            except ResolveError as error:
                raise VerificationError(f"could not fetch the key's owner: {error}") from None
            if account.key_id != key_id:
                raise VerificationError(f"the actor {account.uri} does not list the key {key_id}")
        return SignerKey(
            key_id=key_id, owner=account.uri, public_key_pem=account.public_key_pem, fetched_at=utcnow()
        )

    async def _mark_gone(self, actor_uri: str) -> None:
        resolver = ActorResolver(self.context)
        cached = await resolver.cached_actor(actor_uri)
        if cached is not None and not cached.is_local:
            await resolver.mark_gone(cached)


def request_verifier(request: Request) -> RequestVerifier:
    """The app's verifier, made on first use: the inbox and signed fetches share one key cache and
    one set of in-flight key fetches per instance."""
    state = request.app.state
    verifier: RequestVerifier | None = getattr(state, "request_verifier", None)
    if verifier is None:
        verifier = RequestVerifier(state.context)
        state.request_verifier = verifier
    return verifier
