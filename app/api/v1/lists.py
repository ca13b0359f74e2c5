"""/api/v1/lists: the viewer's lists, their members, and /api/v1/timelines/list/:id."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from app.api.auth import ApiCaller, scoped
from app.api.entities.account import account_entity
from app.api.entities.discovery import list_entity
from app.api.entities.status import statuses
from app.api.form_values import flag, id_list, id_value, integer
from app.api.ids import path_id
from app.api.pagination import link_header, page_request
from app.api.params import request_params
from app.context import AppContext
from app.dependencies import get_context
from app.services.account_lookup import account_by_id
from app.services.lists import ListService
from app.services.paged_lists import list_posts

router = APIRouter(prefix="/api/v1")
read_lists = scoped("read", "read:lists", user=True)
write_lists = scoped("write", "write:lists", user=True)


@router.get("/lists")
async def all_lists(
    context: AppContext = Depends(get_context), caller: ApiCaller = Depends(read_lists)
) -> JSONResponse:
    return JSONResponse([list_entity(found) for found in await ListService(context, caller.viewer).lists()])


@router.post("/lists")
async def create_list(
    request: Request, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_lists)
) -> JSONResponse:
    params = await request_params(request)
    created = await ListService(context, caller.viewer).create(
        params.text("title"), params.text("replies_policy"), bool(flag(params, "exclusive"))
    )
    return JSONResponse(list_entity(created))


@router.get("/lists/{list_id}")
async def show_list(
    list_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(read_lists)
) -> JSONResponse:
    return JSONResponse(list_entity(await ListService(context, caller.viewer).get(path_id(list_id))))


@router.put("/lists/{list_id}")
async def update_list(
    list_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(write_lists),
) -> JSONResponse:
    params = await request_params(request)
    updated = await ListService(context, caller.viewer).update(
        path_id(list_id), params.text("title"), params.text("replies_policy"), flag(params, "exclusive", None)
    )
    return JSONResponse(list_entity(updated))


@router.delete("/lists/{list_id}")
async def delete_list(
    list_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_lists)
) -> JSONResponse:
    await ListService(context, caller.viewer).delete(path_id(list_id))
    return JSONResponse({})


@router.get("/lists/{list_id}/accounts")
async def list_accounts(
    list_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(read_lists),
) -> Response:
    params = await request_params(request)
    # Mastodon: limit=0 lists every member at once.
    limit = integer(params, "limit", maximum=2**31)
    limit = 40 if limit is None else (None if limit == 0 else min(limit, 80))
    max_id = params.get("max_id")
    members = await ListService(context, caller.viewer).members(
        path_id(list_id), limit=limit, max_id=id_value(max_id, "max_id") if max_id and limit else None
    )
    headers = (
        link_header(request, context.settings.base_url, [member_id for member_id, _ in members])
        if limit
        else {}
    )
    return JSONResponse([account_entity(context, account) for _, account in members], headers=headers)


@router.post("/lists/{list_id}/accounts")
async def add_list_accounts(
    list_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(write_lists),
) -> JSONResponse:
    params = await request_params(request)
    await ListService(context, caller.viewer).add_members(path_id(list_id), id_list(params, "account_ids"))
    return JSONResponse({})


@router.delete("/lists/{list_id}/accounts")
async def remove_list_accounts(
    list_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(write_lists),
) -> JSONResponse:
    params = await request_params(request)
    await ListService(context, caller.viewer).remove_members(path_id(list_id), id_list(params, "account_ids"))
    return JSONResponse({})


@router.get("/timelines/list/{list_id}")
async def list_timeline(
    list_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:lists", user=True)),
) -> JSONResponse:
    found = await ListService(context, caller.viewer).get(path_id(list_id))
    posts = await list_posts(context, caller.viewer, found, page_request(request))
    return JSONResponse(
        await statuses(context, caller.viewer, posts, filter_context="home"),
        headers=link_header(request, context.settings.base_url, [post.id for post in posts]),
    )


@router.get("/accounts/{account_id}/lists")
async def lists_of_account(
    account_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(read_lists)
) -> JSONResponse:
    account = await account_by_id(context, caller.viewer, path_id(account_id))
    found = await ListService(context, caller.viewer).lists_containing(account.id)
    return JSONResponse([list_entity(item) for item in found])


__all__ = ["router"]
