"""/api/v1/statuses: posting, reading one post and its thread, deleting, likes and boosts.

Each calls the same PostingService as the web pages, as the account the token acts as; a post the
token's account may not see is 404, whether it exists or not."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.account import PRIVACY_NAMES
from app.api.entities.status import statuses
from app.api.form_values import flag
from app.api.ids import path_id
from app.api.params import WrongType, request_params
from app.context import AppContext
from app.dependencies import get_context
from app.models import Account, Post
from app.services.errors import NotFound
from app.services.idempotency import IdempotencyClaim
from app.services.post_lists import thread_posts
from app.services.posting import PostingService
from app.services.viewer import Viewer

router = APIRouter(prefix="/api/v1/statuses")
public_read = scoped("read", "read:statuses", optional=True)

# Mastodon's audience names → Herold's.
VISIBILITIES = {"public": "public", "unlisted": "unlisted", "private": "followers", "direct": "direct"}
MAX_STATUS_BODY = 100_000


async def visible_status(context: AppContext, viewer: Viewer, status_id: str) -> Post:
    post = await PostingService(context, viewer).visible_post(path_id(status_id))
    if post is None:
        raise NotFound("Record not found")
    return post


async def one_status(context: AppContext, viewer: Viewer, post: Post) -> dict[str, Any]:
    found = await statuses(context, viewer, [post])
    if not found:
        raise NotFound("Record not found")
    return found[0]


def acting_account(caller: ApiCaller) -> Account:
    assert caller.viewer.account is not None  # scoped(user=True) lets only a person's token through
    return caller.viewer.account


@router.post("")
async def create(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:statuses", user=True)),
) -> JSONResponse:
    params = await request_params(request)
    claim = IdempotencyClaim.of(
        caller.holder.token.id if caller.holder else None, request.headers.get("idempotency-key")
    )
    text = params.text("status") or ""
    if len(text) > MAX_STATUS_BODY:
        raise WrongType("status: is too long")
    defaults = caller.viewer.user
    # Unset, the login's posting defaults apply (update_credentials' source[privacy|language]).
    visibility = (
        params.text("visibility")
        or (PRIVACY_NAMES.get(defaults.default_privacy) if defaults else None)
        or "public"
    )
    if visibility not in VISIBILITIES:
        raise WrongType(f"visibility: must be one of {', '.join(VISIBILITIES)}")
    in_reply_to = params.text("in_reply_to_id")
    if in_reply_to:
        await visible_status(context, caller.viewer, in_reply_to)
    post = await PostingService(context, caller.viewer).create(
        acting_account(caller),
        text,
        visibility=VISIBILITIES[visibility],
        spoiler_text=params.text("spoiler_text"),
        # Unset, the login's default (source[sensitive]) applies, as Mastodon's PostStatusService does.
        sensitive=bool(flag(params, "sensitive", defaults.default_sensitive if defaults else False)),
        language=params.text("language") or (defaults.default_language if defaults else None),
        in_reply_to=in_reply_to or None,
        media_ids=params.texts("media_ids"),
        idempotency=claim,
    )
    return JSONResponse(await one_status(context, caller.viewer, post))


@router.get("/{status_id}")
async def show(
    status_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(public_read)
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    return JSONResponse(await one_status(context, caller.viewer, post))


@router.delete("/{status_id}")
async def delete(
    status_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:statuses", user=True)),
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    # Built before the text goes, with `text` for "delete and redraft".
    entity = await one_status(context, caller.viewer, post)
    entity["text"] = post.content_source or ""
    await PostingService(context, caller.viewer).delete(acting_account(caller), post.id)
    return JSONResponse(entity)


@router.get("/{status_id}/context")
async def thread(
    status_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(public_read)
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    ancestors, descendants = await thread_posts(context, post, caller.viewer)
    return JSONResponse(
        {
            "ancestors": await statuses(context, caller.viewer, ancestors, filter_context="thread"),
            "descendants": await statuses(context, caller.viewer, descendants, filter_context="thread"),
        }
    )


@router.post("/{status_id}/favourite")
async def favourite(
    status_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:favourites", user=True)),
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    await PostingService(context, caller.viewer).like(acting_account(caller), post.id)
    return JSONResponse(
        await one_status(context, caller.viewer, await visible_status(context, caller.viewer, status_id))
    )


@router.post("/{status_id}/unfavourite")
async def unfavourite(
    status_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:favourites", user=True)),
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    await PostingService(context, caller.viewer).unlike(acting_account(caller), post.id)
    return JSONResponse(
        await one_status(context, caller.viewer, await visible_status(context, caller.viewer, status_id))
    )


@router.post("/{status_id}/reblog")
async def reblog(
    status_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:statuses", user=True)),
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    boost = await PostingService(context, caller.viewer).boost(acting_account(caller), post.id)
    # Mastodon answers with the boost, whose `reblog` is the post.
    return JSONResponse(await one_status(context, caller.viewer, boost))


@router.post("/{status_id}/unreblog")
async def unreblog(
    status_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:statuses", user=True)),
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    await PostingService(context, caller.viewer).unboost(acting_account(caller), post.id)
    return JSONResponse(
        await one_status(context, caller.viewer, await visible_status(context, caller.viewer, status_id))
    )


__all__ = ["acting_account", "one_status", "router", "visible_status"]
