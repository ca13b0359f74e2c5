"""/api/v1/filters: the old one-phrase view of the same filters (each v1 filter is one keyword of
a v2 filter, named by the keyword's id; `irreversible` is the `hide` action)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.discovery import filter_v1_entity
from app.api.form_values import flag, integer, texts_of
from app.api.ids import path_id
from app.api.params import WrongType, request_params
from app.api.v2.filters import MAX_EXPIRY, expires_in
from app.context import AppContext
from app.dependencies import get_context
from app.models import FilterAction
from app.services.content_filters import FilterService, KeywordInput

router = APIRouter(prefix="/api/v1/filters")
read_filters = scoped("read", "read:filters", user=True)
write_filters = scoped("write", "write:filters", user=True)


@router.get("")
async def all_filters(
    context: AppContext = Depends(get_context), caller: ApiCaller = Depends(read_filters)
) -> JSONResponse:
    found = await FilterService(context, caller.viewer).all()
    return JSONResponse(
        [filter_v1_entity(keyword, details.filter) for details in found for keyword in details.keywords]
    )


@router.post("")
async def create_filter(
    request: Request, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_filters)
) -> JSONResponse:
    params = await request_params(request)
    phrase = params.text("phrase")
    if not phrase or not phrase.strip():
        raise WrongType("phrase: must not be blank")
    service = FilterService(context, caller.viewer)
    created = await service.create(
        title=phrase,
        contexts=texts_of(params, "context") or [],
        action=FilterAction.HIDE if flag(params, "irreversible") else FilterAction.WARN,
        expires_in=integer(params, "expires_in", minimum=1, maximum=MAX_EXPIRY),
        keywords=[KeywordInput(phrase, whole_word=bool(flag(params, "whole_word", True)))],
    )
    return JSONResponse(filter_v1_entity(created.keywords[0], created.filter))


@router.get("/{keyword_id}")
async def show_filter(
    keyword_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(read_filters)
) -> JSONResponse:
    keyword, parent = await FilterService(context, caller.viewer).keyword(path_id(keyword_id))
    return JSONResponse(filter_v1_entity(keyword, parent))


@router.put("/{keyword_id}")
async def update_filter(
    keyword_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(write_filters),
) -> JSONResponse:
    params = await request_params(request)
    service = FilterService(context, caller.viewer)
    keyword, parent = await service.keyword(path_id(keyword_id))
    irreversible = flag(params, "irreversible", None)
    await service.update(
        parent.id,
        contexts=texts_of(params, "context"),
        action=None if irreversible is None else (FilterAction.HIDE if irreversible else FilterAction.WARN),
        expires_in=expires_in(params),
    )
    updated = await service.update_keyword(
        keyword.id, params.text("phrase"), flag(params, "whole_word", None)
    )
    keyword, parent = await service.keyword(updated.id)
    return JSONResponse(filter_v1_entity(keyword, parent))


@router.delete("/{keyword_id}")
async def delete_filter(
    keyword_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_filters)
) -> JSONResponse:
    service = FilterService(context, caller.viewer)
    keyword, parent = await service.keyword(path_id(keyword_id))
    details = await service.get(parent.id)
    # The last keyword takes its (v1-made) filter with it, as Mastodon's v1 delete does.
    if len(details.keywords) <= 1 and not details.statuses:
        await service.delete(parent.id)
    else:
        await service.delete_keyword(keyword.id)
    return JSONResponse({})


__all__ = ["router"]
