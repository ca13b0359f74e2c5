"""/api/v1/notifications: the list (types[], exclude_types[], account_id), one notification,
dismiss, clear, the unread count (against the notifications marker), and the notification
requests and policy Mastodon 4.3's apps ask for. Herold filters no notifications into requests,
so there are never any, and the only policy it follows is "accept"."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.account import kept_account_entity
from app.api.entities.notification import LISTED, NOTIFICATION_TYPES, notification_entity
from app.api.entities.notification import notifications as notification_list
from app.api.entities.status import statuses
from app.api.ids import path_id
from app.api.pagination import link_header, page_request
from app.api.params import WrongType, request_params
from app.api.responses import FastJSONResponse
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import NotFound
from app.services.notification_groups import NotificationFilter, NotificationInbox
from app.services.paged_lists import notifications_of

router = APIRouter(prefix="/api/v1/notifications")
read_notifications = scoped("read", "read:notifications", user=True)
write_notifications = scoped("write", "write:notifications", user=True)
MAX_TYPES = len(NOTIFICATION_TYPES)
POLICY_FIELDS = (
    "for_not_following",
    "for_not_followers",
    "for_new_accounts",
    "for_private_mentions",
    "for_limited_accounts",
)


def requested_kinds(request: Request, name: str) -> frozenset[str] | None:
    """The stored kinds `types[]` or `exclude_types[]` name (types: every listed kind when absent)."""
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
    return frozenset(stored)


def notification_filter(request: Request) -> NotificationFilter:
    account_id = request.query_params.get("account_id")
    return NotificationFilter(
        types=requested_kinds(request, "types"),
        exclude_types=requested_kinds(request, "exclude_types") or frozenset(),
        from_account_id=path_id(account_id) if account_id else None,
    )


def count_limit(request: Request) -> int:
    raw = request.query_params.get("limit") or "100"
    if not raw.isdigit():
        raise WrongType("limit: must be a number")
    return max(1, min(int(raw), 1000))


@router.get("")
async def notifications(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(read_notifications),
) -> JSONResponse:
    only = notification_filter(request)
    entries, page_ids = await notifications_of(
        context,
        caller.viewer,
        page_request(request, default_limit=40, max_limit=80),
        types=set(only.types) if only.types is not None else None,
        exclude_types=set(only.exclude_types),
        from_account_id=only.from_account_id,
    )
    body = await notification_list(context, caller.viewer, entries)
    return FastJSONResponse(body, headers=link_header(request, context.settings.base_url, page_ids))


@router.get("/unread_count")
async def unread_count(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(read_notifications),
) -> JSONResponse:
    count = await NotificationInbox(context, caller.viewer).unread_count(
        notification_filter(request), limit=count_limit(request)
    )
    return JSONResponse({"count": count})


@router.post("/clear")
async def clear(
    context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_notifications)
) -> JSONResponse:
    await NotificationInbox(context, caller.viewer).clear()
    return JSONResponse({})


@router.get("/requests")
async def requests(caller: ApiCaller = Depends(read_notifications)) -> JSONResponse:
    return JSONResponse([])


@router.get("/requests/merged")
async def requests_merged(caller: ApiCaller = Depends(read_notifications)) -> JSONResponse:
    return JSONResponse({"merged": True})


@router.get("/requests/{request_id}")
async def one_request(request_id: str, caller: ApiCaller = Depends(read_notifications)) -> JSONResponse:
    raise NotFound("Record not found")


@router.post("/requests/{request_id}/{action}")
async def act_on_request(
    request_id: str, action: str, caller: ApiCaller = Depends(write_notifications)
) -> JSONResponse:
    raise NotFound("Record not found")


def policy_entity(version: int) -> dict[str, Any]:
    summary = {"pending_requests_count": 0, "pending_notifications_count": 0}
    if version == 1:
        return {
            "filter_not_following": False,
            "filter_not_followers": False,
            "filter_new_accounts": False,
            "filter_private_mentions": False,
            "summary": summary,
        }
    return {**{name: "accept" for name in POLICY_FIELDS}, "summary": summary}


async def check_policy_update(request: Request, version: int) -> None:
    """Herold holds back no notifications: a change to anything but "accept" is refused by name."""
    params = await request_params(request)
    for name, value in params.items():
        if version == 1 and name.startswith("filter_"):
            if str(value).lower() not in ("false", "0", ""):
                raise WrongType(f"{name}: Herold does not filter notifications; only false is possible")
        elif version == 2 and name in POLICY_FIELDS:
            if value != "accept":
                raise WrongType(f"{name}: Herold does not filter notifications; only accept is possible")


@router.get("/policy")
async def policy(caller: ApiCaller = Depends(read_notifications)) -> JSONResponse:
    return JSONResponse(policy_entity(1))


@router.patch("/policy")
async def update_policy(request: Request, caller: ApiCaller = Depends(write_notifications)) -> JSONResponse:
    await check_policy_update(request, 1)
    return JSONResponse(policy_entity(1))


@router.get("/{notification_id}")
async def one(
    notification_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(read_notifications),
) -> JSONResponse:
    row, sender, post = await NotificationInbox(context, caller.viewer).one(path_id(notification_id))
    if row.type not in LISTED:
        raise NotFound("Record not found")
    shown = (
        await statuses(context, caller.viewer, [post], filter_context="notifications")
        if post is not None
        else []
    )
    if post is not None and not shown:
        raise NotFound("Record not found")
    return JSONResponse(
        notification_entity(row, kept_account_entity(context, sender), shown[0] if shown else None)
    )


@router.post("/{notification_id}/dismiss")
async def dismiss(
    notification_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(write_notifications),
) -> JSONResponse:
    await NotificationInbox(context, caller.viewer).dismiss(path_id(notification_id))
    return JSONResponse({})


__all__ = [
    "check_policy_update",
    "count_limit",
    "notification_filter",
    "policy_entity",
    "requested_kinds",
    "router",
]
