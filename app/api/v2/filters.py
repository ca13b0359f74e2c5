"""/api/v2/filters: the viewer's content filters with their keywords and posts (the filtering
itself happens in the read model, where timelines are loaded)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.discovery import filter_entity, filter_status_entity, keyword_entity
from app.api.form_values import flag, id_value, integer, nested_list, texts_of
from app.api.ids import path_id
from app.api.params import Params, WrongType, request_params
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import NotFound
from app.services.content_filters import KEEP, FilterService, KeywordInput
from app.services.post_access import PostAccess

router = APIRouter(prefix="/api/v2/filters")
read_filters = scoped("read", "read:filters", user=True)
write_filters = scoped("write", "write:filters", user=True)

MAX_EXPIRY = 10 * 365 * 24 * 3600


def _bool(value: Any, name: str, default: bool) -> bool:
    if value is None:
        return default
    return bool(flag(Params({name: value}), name, default))


def keyword_inputs(params: Params) -> list[KeywordInput]:
    inputs = []
    for item in nested_list(params, "keywords_attributes"):
        keyword = item.get("keyword")
        if keyword is not None and not isinstance(keyword, str):
            raise WrongType("keywords_attributes: keyword must be a string")
        raw_id = item.get("id")
        inputs.append(
            KeywordInput(
                keyword=keyword or "",
                whole_word=_bool(item.get("whole_word"), "whole_word", True),
                id=id_value(raw_id, "keywords_attributes: id") if raw_id not in (None, "") else None,
                destroy=_bool(item.get("_destroy"), "_destroy", False),
            )
        )
    return inputs


def expires_in(params: Params) -> int | object | None:
    """Seconds from now; an empty or null value clears the expiry; absent keeps it."""
    if "expires_in" not in params:
        return KEEP
    return integer(params, "expires_in", minimum=1, maximum=MAX_EXPIRY)


@router.get("")
async def all_filters(
    context: AppContext = Depends(get_context), caller: ApiCaller = Depends(read_filters)
) -> JSONResponse:
    return JSONResponse([filter_entity(found) for found in await FilterService(context, caller.viewer).all()])


@router.post("")
async def create_filter(
    request: Request, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_filters)
) -> JSONResponse:
    params = await request_params(request)
    expiry = expires_in(params)
    created = await FilterService(context, caller.viewer).create(
        title=params.text("title"),
        contexts=texts_of(params, "context") or [],
        action=params.text("filter_action"),
        expires_in=expiry if isinstance(expiry, int) else None,
        keywords=keyword_inputs(params),
    )
    return JSONResponse(filter_entity(created))


@router.get("/keywords/{keyword_id}")
async def show_keyword(
    keyword_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(read_filters)
) -> JSONResponse:
    keyword, _ = await FilterService(context, caller.viewer).keyword(path_id(keyword_id))
    return JSONResponse(keyword_entity(keyword))


@router.put("/keywords/{keyword_id}")
async def update_keyword(
    keyword_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(write_filters),
) -> JSONResponse:
    params = await request_params(request)
    keyword = await FilterService(context, caller.viewer).update_keyword(
        path_id(keyword_id), params.text("keyword"), flag(params, "whole_word", None)
    )
    return JSONResponse(keyword_entity(keyword))


@router.delete("/keywords/{keyword_id}")
async def delete_keyword(
    keyword_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_filters)
) -> JSONResponse:
    await FilterService(context, caller.viewer).delete_keyword(path_id(keyword_id))
    return JSONResponse({})


@router.get("/statuses/{status_id}")
async def show_status(
    status_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(read_filters)
) -> JSONResponse:
    return JSONResponse(
        filter_status_entity(await FilterService(context, caller.viewer).status(path_id(status_id)))
    )


@router.delete("/statuses/{status_id}")
async def delete_status(
    status_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_filters)
) -> JSONResponse:
    await FilterService(context, caller.viewer).delete_status(path_id(status_id))
    return JSONResponse({})


@router.get("/{filter_id}")
async def show_filter(
    filter_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(read_filters)
) -> JSONResponse:
    return JSONResponse(filter_entity(await FilterService(context, caller.viewer).get(path_id(filter_id))))


@router.put("/{filter_id}")
async def update_filter(
    filter_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(write_filters),
) -> JSONResponse:
    params = await request_params(request)
    updated = await FilterService(context, caller.viewer).update(
        path_id(filter_id),
        title=params.text("title"),
        contexts=texts_of(params, "context"),
        action=params.text("filter_action"),
        expires_in=expires_in(params),
        keywords=keyword_inputs(params),
    )
    return JSONResponse(filter_entity(updated))


@router.delete("/{filter_id}")
async def delete_filter(
    filter_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_filters)
) -> JSONResponse:
    await FilterService(context, caller.viewer).delete(path_id(filter_id))
    return JSONResponse({})


@router.get("/{filter_id}/keywords")
async def keywords(
    filter_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(read_filters)
) -> JSONResponse:
    found = await FilterService(context, caller.viewer).get(path_id(filter_id))
    return JSONResponse([keyword_entity(keyword) for keyword in found.keywords])


@router.post("/{filter_id}/keywords")
async def add_keyword(
    filter_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(write_filters),
) -> JSONResponse:
    params = await request_params(request)
    keyword = await FilterService(context, caller.viewer).add_keyword(
        path_id(filter_id), params.text("keyword") or "", bool(flag(params, "whole_word", True))
    )
    return JSONResponse(keyword_entity(keyword))


@router.get("/{filter_id}/statuses")
async def filter_statuses(
    filter_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(read_filters)
) -> JSONResponse:
    found = await FilterService(context, caller.viewer).get(path_id(filter_id))
    return JSONResponse([filter_status_entity(status) for status in found.statuses])


@router.post("/{filter_id}/statuses")
async def add_status(
    filter_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(write_filters),
) -> JSONResponse:
    params = await request_params(request)
    raw = params.get("status_id")
    if raw is None or raw == "":
        raise WrongType("status_id: missing")
    post = await PostAccess(context, caller.viewer).visible_post(id_value(raw, "status_id"))
    if post is None:
        raise NotFound("Record not found")
    status = await FilterService(context, caller.viewer).add_status(path_id(filter_id), post)
    return JSONResponse(filter_status_entity(status))


__all__ = ["expires_in", "keyword_inputs", "router"]
