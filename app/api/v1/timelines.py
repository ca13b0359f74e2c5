"""/api/v1/timelines (home, public), paged as Mastodon pages them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.status import statuses
from app.api.pagination import link_header, page_request
from app.api.responses import FastJSONResponse
from app.context import AppContext
from app.dependencies import get_context
from app.services.paged_lists import home_posts, public_posts

router = APIRouter(prefix="/api/v1")


def _flag(request: Request, name: str) -> bool:
    return (request.query_params.get(name) or "").lower() in ("true", "1", "on", "yes")


@router.get("/timelines/home")
async def home(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:statuses", user=True)),
) -> JSONResponse:
    posts = await home_posts(context, caller.viewer, page_request(request))
    return FastJSONResponse(
        await statuses(context, caller.viewer, posts, filter_context="home"),
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
        only_media=_flag(request, "only_media"),
    )
    return FastJSONResponse(
        await statuses(context, caller.viewer, posts, filter_context="public"),
        headers=link_header(request, context.settings.base_url, [post.id for post in posts]),
    )


__all__ = ["router"]
