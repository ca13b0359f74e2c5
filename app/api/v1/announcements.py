"""/api/v1/announcements: the administrators' announcements in force, marked read and reacted to
per account (PUT/DELETE /:id/reactions/:name take a Unicode emoji; any other name is unknown)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.common import api_id, api_time
from app.api.ids import path_id
from app.context import AppContext
from app.dependencies import get_context
from app.services.announcements import Announcements, AnnouncementView
from app.services.text_format import render_plain_text

router = APIRouter(prefix="/api/v1/announcements")


def announcement_entity(context: AppContext, view: AnnouncementView) -> dict[str, Any]:
    row = view.announcement
    return {
        "id": api_id(row.id),
        "content": render_plain_text(row.text, mention_hrefs={}, hashtag_href=context.urls.tag),
        "starts_at": api_time(row.starts_at),
        "ends_at": api_time(row.ends_at),
        "all_day": row.all_day,
        "published_at": api_time(row.published_at),
        "updated_at": api_time(row.updated_at),
        "read": view.read,
        "mentions": [],
        "statuses": [],
        "tags": [],
        "emojis": [],
        "reactions": [{"name": item.name, "count": item.count, "me": item.me} for item in view.reactions],
    }


@router.get("")
async def active(
    context: AppContext = Depends(get_context), caller: ApiCaller = Depends(scoped("read", user=True))
) -> JSONResponse:
    views = await Announcements(context, caller.viewer).active()
    return JSONResponse([announcement_entity(context, view) for view in views])


@router.post("/{announcement_id}/dismiss")
async def dismiss(
    announcement_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:accounts", user=True)),
) -> JSONResponse:
    await Announcements(context, caller.viewer).dismiss(path_id(announcement_id))
    return JSONResponse({})


@router.put("/{announcement_id}/reactions/{name}")
async def react(
    announcement_id: str,
    name: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:favourites", user=True)),
) -> JSONResponse:
    await Announcements(context, caller.viewer).react(path_id(announcement_id), name)
    return JSONResponse({})


@router.delete("/{announcement_id}/reactions/{name}")
async def unreact(
    announcement_id: str,
    name: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:favourites", user=True)),
) -> JSONResponse:
    await Announcements(context, caller.viewer).unreact(path_id(announcement_id), name)
    return JSONResponse({})


__all__ = ["announcement_entity", "router"]
