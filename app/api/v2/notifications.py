"""/api/v2/notifications: grouped notifications as Mastodon 4.3+ answers them (Elk, Phanpy and
Ice Cubes read these once the server's API version allows): groups, with the accounts and
statuses they name listed once beside them; one group, its accounts, dismissing it; the unread
count in groups; the notification policy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.account import account_entities, account_entity
from app.api.entities.notification import NOTIFICATION_TYPES, notification_group_entity
from app.api.entities.status import statuses
from app.api.pagination import link_header, page_request
from app.api.params import WrongType
from app.api.responses import FastJSONResponse
from app.api.v1.notifications import check_policy_update, count_limit, notification_filter, policy_entity
from app.context import AppContext
from app.dependencies import get_context
from app.services.notification_groups import GROUPABLE, SAMPLE_ACCOUNTS, GroupedPage, NotificationInbox

router = APIRouter(prefix="/api/v2/notifications")
read_notifications = scoped("read", "read:notifications", user=True)
write_notifications = scoped("write", "write:notifications", user=True)
DEFAULT_GROUPED = frozenset(GROUPABLE)


def _grouped_types(request: Request) -> frozenset[str]:
    names = request.query_params.getlist("grouped_types[]") + request.query_params.getlist("grouped_types")
    if not names:
        return DEFAULT_GROUPED
    stored: set[str] = set()
    for name in names:
        if name not in NOTIFICATION_TYPES:
            raise WrongType(f"grouped_types: unknown notification type {name[:40]!r}")
        stored |= NOTIFICATION_TYPES[name]
    return frozenset(stored) & DEFAULT_GROUPED


async def _body(context: AppContext, caller: ApiCaller, page: GroupedPage) -> dict[str, Any]:
    # The senders each group names, as entities (kept, or read in one query and kept); a group
    # whose latest sender is gone is left out.
    sample_ids = list(
        dict.fromkeys(account for group in page.groups for account in group.sender_ids[:SAMPLE_ACCOUNTS])
    )
    accounts = await account_entities(context, sample_ids)
    present = [group for group in page.groups if group.latest.from_account_id in accounts]
    shown_posts = [
        page.posts[group.latest.post_id] for group in present if group.latest.post_id in page.posts
    ]
    # The viewer's filters for the notifications context: a hidden post's group is left out, as in v1.
    status_entities = await statuses(
        context,
        caller.viewer,
        list({post.id: post for post in shown_posts}.values()),
        filter_context="notifications",
    )
    shown_ids = {entity["id"] for entity in status_entities}
    groups = [
        notification_group_entity(group)
        for group in present
        if group.latest.post_id is None or str(group.latest.post_id) in shown_ids
    ]
    named = {int(account_id) for group in groups for account_id in group["sample_account_ids"]}
    return {
        "accounts": [
            accounts[account_id]
            for account_id in sample_ids
            if account_id in named and account_id in accounts
        ],
        "statuses": status_entities,
        "notification_groups": groups,
    }


@router.get("")
async def grouped(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(read_notifications),
) -> JSONResponse:
    page = await NotificationInbox(context, caller.viewer).groups(
        notification_filter(request),
        page_request(request, default_limit=40, max_limit=80),
        grouped=_grouped_types(request),
    )
    return FastJSONResponse(
        await _body(context, caller, page),
        headers=link_header(request, context.settings.base_url, page.page_ids),
    )


@router.get("/unread_count")
async def unread_count(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(read_notifications),
) -> JSONResponse:
    count = await NotificationInbox(context, caller.viewer).unread_count(
        notification_filter(request), limit=count_limit(request), grouped=_grouped_types(request)
    )
    return JSONResponse({"count": count})


@router.get("/policy")
async def policy(caller: ApiCaller = Depends(read_notifications)) -> JSONResponse:
    return JSONResponse(policy_entity(2))


@router.patch("/policy")
async def update_policy(request: Request, caller: ApiCaller = Depends(write_notifications)) -> JSONResponse:
    await check_policy_update(request, 2)
    return JSONResponse(policy_entity(2))


@router.get("/{group_key}")
async def one_group(
    group_key: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(read_notifications),
) -> JSONResponse:
    page = await NotificationInbox(context, caller.viewer).group(group_key)
    return JSONResponse(await _body(context, caller, page))


@router.get("/{group_key}/accounts")
async def group_accounts(
    group_key: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(read_notifications),
) -> JSONResponse:
    page = await NotificationInbox(context, caller.viewer).group(group_key)
    senders = page.groups[0].sender_ids if page.groups else []
    return JSONResponse(
        [account_entity(context, page.accounts[account]) for account in senders if account in page.accounts]
    )


@router.post("/{group_key}/dismiss")
async def dismiss_group(
    group_key: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(write_notifications),
) -> JSONResponse:
    await NotificationInbox(context, caller.viewer).dismiss_group(group_key)
    return JSONResponse({})


__all__ = ["router"]
