"""The staff's timelines: home (their own and followed accounts' posts) and local."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.context import AppContext
from app.dependencies import get_context
from app.i18n import N_
from app.services.post_lists import local_posts
from app.services.timelines import TimelineService
from app.web.post_views import build_cards, timeline_cursor
from app.web.session import Viewer, current_user
from app.web.staff_common import PAGE_SIZE, here, page_cursor
from app.web.templating import render

router = APIRouter()


@router.get("/home")
async def home_timeline(
    request: Request,
    max_id: str | None = None,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    cursor = page_cursor(request, max_id)
    summaries = await TimelineService(context).home(viewer.account, limit=PAGE_SIZE, max_id=cursor)
    items = [summary.post for summary in summaries]
    next_max_id = (
        await timeline_cursor(context, viewer.account.id, items[-1].id)
        if len(summaries) >= PAGE_SIZE
        else None
    )
    return render(
        request,
        "staff/timeline.html",
        {
            "title": N_("Home"),
            "intro": N_("Your posts and the posts of the accounts you follow, newest first."),
            "cards": await build_cards(context, items, viewer),
            "next_max_id": next_max_id,
            "return_to": here(request),
            "empty": N_("Nothing here yet. Write a post, or search for accounts to follow."),
        },
    )


@router.get("/local")
async def local_timeline(
    request: Request,
    max_id: str | None = None,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    posts, next_max_id = await local_posts(
        context, viewer, max_id=page_cursor(request, max_id), limit=PAGE_SIZE
    )
    return render(
        request,
        "staff/timeline.html",
        {
            "title": N_("Local"),
            "intro": N_("Public posts written on this server."),
            "cards": await build_cards(context, posts, viewer),
            "next_max_id": next_max_id,
            "return_to": here(request),
            "empty": N_("No public posts on this server yet."),
        },
    )
