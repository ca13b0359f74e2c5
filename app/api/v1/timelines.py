"""/api/v1/timelines (home, public) and /api/v1/notifications, paged as Mastodon pages them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.account import account_entity
from app.api.entities.common import api_id, api_time
from app.api.entities.status import statuses
from app.api.ids import path_id
from app.api.pagination import link_header, page_request
from app.api.params import WrongType
from app.context import AppContext
from app.dependencies import get_context
from app.models import NotificationType
from app.services.paged_lists import home_posts, notifications_of, public_posts

router = APIRouter(prefix="/api/v1")

# Mastodon's notification types → the ones Herold stores (a reply is a mention to Mastodon).
NOTIFICATION_TYPES: dict[str, set[str]] = {
    "mention": {NotificationType.MENTION, NotificationType.REPLY},
    "status": set(),
    "reblog": {NotificationType.REBLOG},
    "follow": {NotificationType.FOLLOW},
    "follow_request": {NotificationType.FOLLOW_REQUEST},
    "favourite": {NotificationType.FAVOURITE},
    "poll": {NotificationType.POLL},
    "update": {NotificationType.UPDATE},
    "admin.sign_up": set(),
    "admin.report": {NotificationType.REPORT},
    "move": {NotificationType.MOVE},
    "severed_relationships": set(),
    "moderation_warning": set(),
    "quote": set(),
    "quoted_update": set(),
}
STORED_TO_API = {stored: name for name, stored_set in NOTIFICATION_TYPES.items() for stored in stored_set}
# Stored kinds Mastodon has no name for (emoji reactions) are never listed.
LISTED = set(STORED_TO_API)
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
    )
    return JSONResponse(
        await statuses(context, caller.viewer, posts, filter_context="public"),
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
    posts = [entry.post for entry in entries if entry.post is not None]
    shown = {int(entity["id"]): entity for entity in await statuses(context, caller.viewer, posts)}
    body: list[dict[str, Any]] = []
    for entry in entries:
        row = entry.notification
        if row.post_id is not None and row.post_id not in shown:
            continue
        body.append(
            {
                "id": api_id(row.id),
                "type": STORED_TO_API[row.type],
                "group_key": f"ungrouped-{row.id}",
                "created_at": api_time(row.created_at),
                "account": account_entity(context, entry.sender),
                **({"status": shown[row.post_id]} if row.post_id is not None else {}),
            }
        )
    return JSONResponse(body, headers=link_header(request, context.settings.base_url, page_ids))


__all__ = ["router"]
