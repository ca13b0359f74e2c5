"""Hashtags: /api/v1/tags/:name (follow, unfollow), /api/v1/followed_tags, and featured tags
(/api/v1/featured_tags, its suggestions, /api/v1/accounts/:id/featured_tags)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.discovery import featured_tag_entity, tag_entity
from app.api.form_values import id_value, integer
from app.api.ids import path_id
from app.api.pagination import link_header
from app.api.params import WrongType, request_params
from app.context import AppContext
from app.dependencies import get_context
from app.services.account_lookup import account_by_id
from app.services.hashtags import HashtagService

router = APIRouter(prefix="/api/v1")
write_follows = scoped("write", "write:follows", user=True)
read_accounts = scoped("read", "read:accounts", user=True)
write_accounts = scoped("write", "write:accounts", user=True)


@router.get("/tags/{name}")
async def show_tag(
    name: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:accounts", optional=True)),
) -> JSONResponse:
    service = HashtagService(context, caller.viewer)
    tag = await service.find(name)
    following = tag.id in await service.followed_ids([tag.id]) if caller.viewer.account else None
    return JSONResponse(tag_entity(context, tag, following=following))


@router.post("/tags/{name}/follow")
async def follow_tag(
    name: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_follows)
) -> JSONResponse:
    tag = await HashtagService(context, caller.viewer).follow(name)
    return JSONResponse(tag_entity(context, tag, following=True))


@router.post("/tags/{name}/unfollow")
async def unfollow_tag(
    name: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_follows)
) -> JSONResponse:
    tag = await HashtagService(context, caller.viewer).unfollow(name)
    return JSONResponse(tag_entity(context, tag, following=False))


@router.get("/followed_tags")
async def followed_tags(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:follows", user=True)),
) -> JSONResponse:
    params = await request_params(request)
    limit = max(1, min(integer(params, "limit", maximum=2**31) or 100, 200))
    max_id = params.get("max_id")
    rows = await HashtagService(context, caller.viewer).followed(
        limit=limit, max_id=id_value(max_id, "max_id") if max_id else None
    )
    return JSONResponse(
        [tag_entity(context, tag, following=True) for _, tag in rows],
        headers=link_header(request, context.settings.base_url, [follow.id for follow, _ in rows]),
    )


@router.get("/featured_tags")
async def featured_tags(
    context: AppContext = Depends(get_context), caller: ApiCaller = Depends(read_accounts)
) -> JSONResponse:
    assert caller.viewer.account is not None
    found = await HashtagService(context, caller.viewer).featured_of(caller.viewer.account.id)
    return JSONResponse([featured_tag_entity(context, item) for item in found])


@router.post("/featured_tags")
async def feature_tag(
    request: Request, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_accounts)
) -> JSONResponse:
    params = await request_params(request)
    name = params.text("name")
    if not name:
        raise WrongType("name: missing")
    return JSONResponse(
        featured_tag_entity(context, await HashtagService(context, caller.viewer).feature(name))
    )


@router.get("/featured_tags/suggestions")
async def featured_tag_suggestions(
    context: AppContext = Depends(get_context), caller: ApiCaller = Depends(read_accounts)
) -> JSONResponse:
    service = HashtagService(context, caller.viewer)
    tags = await service.suggestions()
    followed = await service.followed_ids(tag.id for tag in tags)
    return JSONResponse([tag_entity(context, tag, following=tag.id in followed) for tag in tags])


@router.delete("/featured_tags/{featured_id}")
async def unfeature_tag(
    featured_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_accounts)
) -> JSONResponse:
    await HashtagService(context, caller.viewer).unfeature(path_id(featured_id))
    return JSONResponse({})


@router.get("/accounts/{account_id}/featured_tags")
async def featured_tags_of(
    account_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:accounts", optional=True)),
) -> JSONResponse:
    account = await account_by_id(context, caller.viewer, path_id(account_id))
    found = await HashtagService(context, caller.viewer).featured_of(account.id)
    return JSONResponse([featured_tag_entity(context, item) for item in found])


__all__ = ["router"]
