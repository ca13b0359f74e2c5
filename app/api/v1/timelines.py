"""/api/v1/timelines (home, public) and /api/v1/notifications, paged as Mastodon pages them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.notification import LISTED, NOTIFICATION_TYPES
from app.api.entities.notification import notifications as notification_list
from app.api.entities.status import statuses
from app.api.ids import path_id
from app.api.pagination import link_header, page_request
from app.api.params import WrongType
from app.context import AppContext
from app.dependencies import get_context
from app.services.paged_lists import home_posts, notifications_of, public_posts

router = APIRouter(prefix="/api/v1")

MAX_TYPES = len(NOTIFICATION_TYPES)


def _flag(request: Request, name: str) -> bool:
    return (request.query_params.get(name) or "").lower() in ("true", "1", "on", "yes")


@router.get("/timelines/home")
async def home(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:statuses", user=True)),
) -> JSONResponse:
    posts = await home_posts(context, caller.viewer, page_request(request))
    return JSONResponse(
        await statuses(context, caller.viewer, posts),
        headers=link_header(request, context.settings.base_url, [post.id for post in posts]),
    )


@router.get("/timelines/public")
async def public(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:statuses", optional=True)),
) -> JSONResponse:
    posts = await public_posts(
        context,
        caller.viewer,
        page_request(request),
        local=_flag(request, "local"),
        remote=_flag(request, "remote"),
    )
    return JSONResponse(
        await statuses(context, caller.viewer, posts),
        headers=link_header(request, context.settings.base_url, [post.id for post in posts]),
    )


def _types(request: Request, name: str) -> set[str] | None:
    names = request.query_params.getlist(f"{name}[]") + request.query_params.getlist(name)
    if not names:
        return None if name == "exclude_types" else LISTED
    if len(names) > MAX_TYPES:
        raise WrongType(f"{name}: at most {MAX_TYPES} types")
    stored: set[str] = set()
    for item in names:
        if item not in NOTIFICATION_TYPES:
            raise WrongType(f"{name}: unknown notification type {item[:40]!r}")
        stored |= NOTIFICATION_TYPES[item]
    return stored


@router.get("/notifications")
async def notifications(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:notifications", user=True)),
) -> JSONResponse:
    types = _types(request, "types")
    account_id = request.query_params.get("account_id")
    entries, page_ids = await notifications_of(
        context,
        caller.viewer,
        page_request(request, default_limit=40, max_limit=80),
        types=types,
        exclude_types=_types(request, "exclude_types"),
        from_account_id=path_id(account_id) if account_id else None,
    )
    body = await notification_list(context, caller.viewer, entries)
    return JSONResponse(body, headers=link_header(request, context.settings.base_url, page_ids))


__all__ = ["router"]
