"""Who may read our ActivityPub documents: signed GETs, blocked domains and authorized fetch.

With AUTHORIZED_FETCH (Mastodon's secure mode) posts and collections are served only to signed
requests, and an unsigned request for an actor gets the minimal actor other servers need to
verify our signatures and nothing more. A signed GET from a suspended domain is refused (403)
whatever the setting: a blocked server does not read us when it says who it is.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlmodel import col, select

from app.activitypub.parsers import InvalidObject, authority
from app.activitypub.signatures import SignatureError, SignedRequest
from app.activitypub.verification import VerificationError, read_signature, request_verifier
from app.context import AppContext
from app.http_errors import Forbidden, Unauthorized
from app.models import Account
from app.services.viewer import Viewer

MINIMAL_ACTOR_KEYS = (
    "@context",
    "id",
    "type",
    "preferredUsername",
    "inbox",
    "outbox",
    "publicKey",
    "endpoints",
)


async def signer_of(request: Request, context: AppContext) -> str | None:
    """The actor that signed this GET, or None when it is unsigned or the signature does not hold.

    Raises Forbidden when the key belongs to a suspended domain (checked before any key fetch).
    """
    signed = await _signature_not_blocked(request, context)
    if signed is None:
        return None
    try:
        key = await request_verifier(request).verify(signed)
    except VerificationError:
        return None
    return key.owner


async def _signature_not_blocked(request: Request, context: AppContext) -> SignedRequest | None:
    """The GET's signature, unverified; None when there is none. Forbidden for a suspended domain's key."""
    if "signature" not in request.headers and "signature-input" not in request.headers:
        return None
    try:
        signed = read_signature(request, context.settings, body=None)
        key_host = authority(signed.key_id)
    except (SignatureError, InvalidObject):
        return None
    if await context.domain_policy.suspending(key_host) is not None:
        raise Forbidden(f"{key_host} is blocked by this server")
    return signed


async def signed_by_suspended_domain(request: Request, context: AppContext) -> bool:
    """Whether this GET carries a signature whose key belongs to a suspended domain (answered 403
    whatever is asked): the public cache serves signed GETs only when it does not."""
    try:
        await _signature_not_blocked(request, context)
    except Forbidden:
        return True
    return False


async def require_signed_fetch(
    request: Request, context: AppContext, *, signer_needed: bool = False
) -> str | None:
    """For posts and collections: the signer; 401 for an unsigned GET under authorized fetch.

    Without authorized fetch a signer matters only where it decides what is shown
    (`signer_needed`); elsewhere the signature is not verified, which could cost a key fetch for
    nothing, and only a suspended domain's key is refused.
    """
    if not context.settings.authorized_fetch and not signer_needed:
        await _signature_not_blocked(request, context)
        return None
    signer = await signer_of(request, context)
    if signer is None and context.settings.authorized_fetch:
        raise Unauthorized("this server requires signed requests (authorized fetch)")
    return signer


async def signed_viewer(request: Request, context: AppContext, *, signer_needed: bool = False) -> Viewer:
    """The viewer of an ActivityPub GET: the remote actor that signed it when its signature was
    checked (see `require_signed_fetch`), otherwise nobody."""
    signer = await require_signed_fetch(request, context, signer_needed=signer_needed)
    if signer is None:
        return Viewer.nobody()
    async with context.sessions() as session:
        account = await session.scalar(select(Account).where(col(Account.uri) == signer))
    return Viewer.remote(account)


async def actor_document(request: Request, context: AppContext, document: dict[str, Any]) -> dict[str, Any]:
    """The actor as this request may see it: whole, or only its keys for an unsigned authorized fetch."""
    if not context.settings.authorized_fetch:
        await _signature_not_blocked(request, context)
        return document
    if await signer_of(request, context) is None:
        return {key: document[key] for key in MINIMAL_ACTOR_KEYS if key in document}
    return document
