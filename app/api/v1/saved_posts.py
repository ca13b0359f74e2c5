"""/api/v1/bookmarks and /api/v1/favourites: the posts the token's account kept or liked, paged
by when it did so (the Link header carries the bookmark's or the like's id, as Mastodon's does)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.status import statuses
from app.api.pagination import link_header, page_request
from app.api.v1.statuses import acting_account
from app.context import AppContext
from app.dependencies import get_context
from app.services.bookmarks import PersonalMarks
from app.services.interaction_lists import favourites_of

router = APIRouter(prefix="/api/v1")


@router.get("/bookmarks")
async def bookmarks(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:bookmarks", user=True)),
) -> JSONResponse:
    posts, ids = await PersonalMarks(context, caller.viewer).bookmarks(
        acting_account(caller), page_request(request)
    )
    return JSONResponse(
        await statuses(context, caller.viewer, posts),
        headers=link_header(request, context.settings.base_url, ids),
    )


@router.get("/favourites")
async def favourites(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:favourites", user=True)),
) -> JSONResponse:
    posts, ids = await favourites_of(context, caller.viewer, page_request(request))
    return JSONResponse(
        await statuses(context, caller.viewer, posts),
        headers=link_header(request, context.settings.base_url, ids),
    )


__all__ = ["router"]
