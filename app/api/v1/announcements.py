"""/api/v1/announcements: the administrators' announcements in force, marked read and reacted to
per account (PUT/DELETE /:id/reactions/:name take a Unicode emoji; any other name is unknown)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.announcement import announcement_entity
from app.api.ids import path_id
from app.context import AppContext
from app.dependencies import get_context
from app.services.announcements import Announcements

router = APIRouter(prefix="/api/v1/announcements")


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
