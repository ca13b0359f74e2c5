"""ActivityPub documents of local actors: the actor, its collections, the instance actor.

The same URLs serve HTML profile pages to browsers; `Vary: Accept` tells caches the two apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from app.activitypub.fetch_access import actor_document, require_signed_fetch, signed_viewer
from app.activitypub.negotiation import ACTIVITY_JSON, wants_activity_json
from app.activitypub.renderers import (
    AS_CONTEXT,
    render_actor,
    render_note,
    render_ordered_collection,
    render_ordered_collection_page,
    render_outbox_item,
    render_tombstone,
)
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import BadRequest, HttpError, NotFound
from app.models import Account
from app.public_cache import PAGE_SECONDS, account_tag, cache_publicly, follows_tag, post_tag
from app.services.accounts import INSTANCE_ACTOR_USERNAME, AccountService
from app.services.profiles import Page, ProfileService

router = APIRouter()

VARY = {"Vary": "Accept"}


class Gone(HttpError):
    status_code = 410


def activity_response(document: dict[str, Any], status_code: int = 200) -> Response:
    return JSONResponse(document, status_code=status_code, media_type=ACTIVITY_JSON, headers=VARY)


def page_number(request: Request) -> int | None:
    raw = request.query_params.get("page")
    if raw is None:
        return None
    if raw == "true":
        return 1
    if not raw.isdigit() or int(raw) < 1 or int(raw) > 1_000_000:
        raise BadRequest(f"page must be a positive whole number, not {raw!r}")
    return int(raw)


async def _local_account_or_error(context: AppContext, username: str) -> Account:
    account = await ProfileService(context).local_account(username, include_deleted=True)
    if account is None or account.username == INSTANCE_ACTOR_USERNAME:
        raise NotFound(f"no account named {username!r} here")
    return account


@router.get("/actor")
async def instance_actor(request: Request, context: AppContext = Depends(get_context)) -> Response:
    # Fetchable without a signature: servers that require signed fetches verify ours with this key.
    actor = await AccountService(context).instance_actor()
    cache_publicly(request, [account_tag(actor.id)])
    return activity_response(render_actor(actor, context.urls))


@router.get("/users/{username}")
async def actor(request: Request, username: str, context: AppContext = Depends(get_context)) -> Response:
    account = await _local_account_or_error(context, username)
    if not wants_activity_json(request.headers.get("accept")):
        if account.deleted_at is not None:
            raise Gone(f"{username} has deleted their account")
        return RedirectResponse(context.urls.profile_page(account.username), status_code=302, headers=VARY)
    if account.deleted_at is not None:
        return activity_response(
            render_tombstone(account.uri, account.actor_type, account.deleted_at), status_code=410
        )
    document = await actor_document(request, context, render_actor(account, context.urls))
    # Under authorized fetch only unsigned GETs reach the cache, and all get the same keys-only actor.
    cache_publicly(request, [account_tag(account.id)])
    return activity_response(document)


def _collection(collection_id: str, page: Page[Any], number: int | None, items: list[Any]) -> Response:
    if number is None:
        return activity_response(
            render_ordered_collection(collection_id, page.total, first=f"{collection_id}?page=1")
        )
    return activity_response(
        render_ordered_collection_page(
            f"{collection_id}?page={number}",
            collection_id,
            items,
            total=page.total,
            next_page=f"{collection_id}?page={number + 1}" if page.has_next else None,
            prev_page=f"{collection_id}?page={number - 1}" if number > 1 else None,
        )
    )


@router.get("/users/{username}/followers")
async def followers(request: Request, username: str, context: AppContext = Depends(get_context)) -> Response:
    return await _account_collection(
        request, context, username, ProfileService.followers, context.urls.followers
    )


@router.get("/users/{username}/following")
async def following(request: Request, username: str, context: AppContext = Depends(get_context)) -> Response:
    return await _account_collection(
        request, context, username, ProfileService.following, context.urls.following
    )


async def _account_collection(
    request: Request,
    context: AppContext,
    username: str,
    list_page: Callable[[ProfileService, Account, int], Awaitable[Page[str]]],
    collection_url: Callable[[str], str],
) -> Response:
    """The followers or following collection: which one is `list_page` (a page of actor URIs) and
    `collection_url` (the collection's id)."""
    account = await _live_account(context, username)
    await require_signed_fetch(request, context)
    number = page_number(request)
    page = await list_page(ProfileService(context), account, number or 1)
    cache_publicly(request, [account_tag(account.id), follows_tag(account.id)], seconds=PAGE_SECONDS)
    return _collection(collection_url(account.username), page, number, page.items)


@router.get("/users/{username}/outbox")
async def outbox(request: Request, username: str, context: AppContext = Depends(get_context)) -> Response:
    account = await _live_account(context, username)
    viewer = await signed_viewer(request, context)
    number = page_number(request)
    profiles = ProfileService(context)
    page = await profiles.public_posts(account, number or 1, viewer)
    reblogged = await profiles.posts_by_id(
        [post.reblog_of_id for post in page.items if post.reblog_of_id], viewer
    )
    items = [
        render_outbox_item(post, account, reblogged.get(post.reblog_of_id) if post.reblog_of_id else None)
        for post in page.items
        if not post.reblog_of_id or post.reblog_of_id in reblogged
    ]
    if viewer.account_id is None:
        shown = [post_tag(post.id) for post in page.items] + [post_tag(post_id) for post_id in reblogged]
        cache_publicly(request, [account_tag(account.id), *shown])
    return _collection(context.urls.outbox(account.username), page, number, items)


@router.get("/users/{username}/collections/featured")
async def featured(request: Request, username: str, context: AppContext = Depends(get_context)) -> Response:
    account = await _live_account(context, username)
    viewer = await signed_viewer(request, context)
    posts = await ProfileService(context).pinned_posts(account, viewer)
    if viewer.account_id is None:
        cache_publicly(request, [account_tag(account.id), *(post_tag(post.id) for post in posts)])
    return activity_response(
        {
            "@context": AS_CONTEXT,
            "id": context.urls.featured(account.username),
            "type": "OrderedCollection",
            "totalItems": len(posts),
            "orderedItems": [render_note(post, account) for post in posts],
        }
    )


@router.get("/users/{username}/collections/tags")
async def featured_tags(
    request: Request, username: str, context: AppContext = Depends(get_context)
) -> Response:
    account = await _live_account(context, username)
    await require_signed_fetch(request, context)
    cache_publicly(request, [account_tag(account.id)])
    return activity_response(
        {
            "@context": AS_CONTEXT,
            "id": context.urls.featured_tags(account.username),
            "type": "Collection",
            "totalItems": 0,
            "items": [],
        }
    )


async def _live_account(context: AppContext, username: str) -> Account:
    account = await _local_account_or_error(context, username)
    if account.deleted_at is not None:
        raise Gone(f"{username} has deleted their account")
    return account
