"""/api/v2/search and /api/v1/accounts/search: the one search service (the web search's), its
results shown only as far as the viewer may see them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import INVALID_TOKEN, ApiCaller, scoped
from app.api.entities.account import account_entity
from app.api.entities.discovery import tag_entity
from app.api.entities.status import statuses
from app.api.form_values import flag, id_value, integer
from app.api.params import Params, WrongType, request_params
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import BadRequest, Unauthorized
from app.services.hashtags import HashtagService
from app.services.search import MAX_QUERY, SearchRequest, SearchService

router = APIRouter()

KINDS = ("accounts", "statuses", "hashtags")


def _query(params: Params) -> str:
    query = params.text("q")
    if query is None or not query.strip():
        raise BadRequest("q: missing")
    if len(query) > MAX_QUERY:
        raise WrongType(f"q: at most {MAX_QUERY} characters")
    return query


def _optional_id(params: Params, name: str) -> int | None:
    value = params.get(name)
    return None if value is None or value == "" else id_value(value, name)


@router.get("/api/v2/search")
async def search(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:search", optional=True)),
) -> JSONResponse:
    params = await request_params(request)
    query = _query(params)
    kind = params.text("type") or None
    if kind is not None and kind not in KINDS:
        raise WrongType("type: must be accounts, statuses or hashtags")
    resolve = bool(flag(params, "resolve"))
    offset = integer(params, "offset", maximum=10_000) or 0
    if caller.viewer.account is None and (resolve or offset):
        # Mastodon: resolving and paging are for people signed in.
        raise Unauthorized(INVALID_TOKEN)
    limit = integer(params, "limit", maximum=2**31) or 20
    wanted = SearchRequest(
        query=query,
        kind=kind,
        limit=max(1, min(limit, 40)),
        offset=offset,
        resolve=resolve,
        following=bool(flag(params, "following")),
        account_id=_optional_id(params, "account_id"),
        max_id=_optional_id(params, "max_id"),
        min_id=_optional_id(params, "min_id"),
    )
    found = await SearchService(context, caller.viewer).search(wanted)
    followed = await HashtagService(context, caller.viewer).followed_ids(tag.id for tag in found.tags)
    signed_in = caller.viewer.account is not None
    return JSONResponse(
        {
            "accounts": [account_entity(context, account) for account in found.accounts],
            "statuses": await statuses(context, caller.viewer, found.posts),
            "hashtags": [
                tag_entity(context, tag, following=(tag.id in followed) if signed_in else None)
                for tag in found.tags
            ],
        }
    )


@router.get("/api/v1/accounts/search")
async def account_search(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:accounts", optional=True)),
) -> JSONResponse:
    params = await request_params(request)
    query = _query(params)
    resolve = bool(flag(params, "resolve"))
    offset = integer(params, "offset", maximum=10_000) or 0
    if caller.viewer.account is None and (resolve or offset):
        raise Unauthorized(INVALID_TOKEN)
    limit = integer(params, "limit", maximum=2**31) or 40
    found = await SearchService(context, caller.viewer).search(
        SearchRequest(
            query=query,
            kind="accounts",
            limit=max(1, min(limit, 80)),
            offset=offset,
            resolve=resolve,
            following=bool(flag(params, "following")),
        )
    )
    return JSONResponse([account_entity(context, account) for account in found.accounts])


__all__ = ["router"]
