"""Notifications of the accounts the viewer acts for, and answering follow requests."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import Forbidden, NotFound
from app.i18n import N_
from app.models import Account
from app.services.follow_requests import FollowRequestService
from app.services.notifications import NotificationService
from app.services.profiles import ProfileService
from app.services.staff import StaffService
from app.web.ids import EntityId
from app.web.notices import redirect
from app.web.post_views import account_by_id, accounts_by_id, build_cards
from app.web.session import Viewer, current_user
from app.web.staff_common import PAGE_SIZE, page_cursor
from app.web.templating import render, translate

router = APIRouter()


async def _notification_account(
    request: Request, context: AppContext, viewer: Viewer, username: str | None
) -> tuple[Account, list[Account]]:
    accounts = await StaffService(context).postable_accounts(viewer.user)
    if not username:
        return accounts[0], accounts
    for account in accounts:
        if account.username == username.lower():
            return account, accounts
    raise Forbidden(translate(request, N_("You may not read this account's notifications.")))


@router.get("/notifications")
async def notifications(
    request: Request,
    account: str | None = None,
    max_id: str | None = None,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    owner, choices = await _notification_account(request, context, viewer, account)
    cursor = page_cursor(request, max_id)
    items = await NotificationService(context).for_account(owner, limit=PAGE_SIZE, max_id=cursor)
    requests = await FollowRequestService(context).pending_requests(owner) if cursor is None else []
    post_ids = list(dict.fromkeys(item.notification.post_id for item in items if item.notification.post_id))
    posts = await ProfileService(context).posts_by_id(post_ids, viewer)
    cards = {
        card.item.id: card
        for card in await build_cards(
            context, [posts[post_id] for post_id in post_ids if post_id in posts], viewer
        )
    }
    senders = await accounts_by_id(context, {item.notification.from_account_id for item in items})
    return render(
        request,
        "staff/notifications.html",
        {
            "owner": owner,
            "choices": choices,
            "items": items,
            "senders": senders,
            "cards": cards,
            "requests": requests,
            "next_max_id": items[-1].notification.id if len(items) >= PAGE_SIZE else None,
        },
    )


@router.post("/notifications/requests/{follower_id}/{decision}")
async def answer_request(
    request: Request,
    follower_id: EntityId,
    decision: str,
    account: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    owner, _choices = await _notification_account(request, context, viewer, account or None)
    follower = await account_by_id(context, follower_id)
    if follower is None or decision not in ("approve", "reject"):
        raise NotFound(translate(request, N_("There is no such follow request.")))
    requests = FollowRequestService(context, viewer)
    done = await (requests.approve if decision == "approve" else requests.reject)(owner, follower)
    if not done:
        raise NotFound(translate(request, N_("There is no such follow request.")))
    target = "/notifications" + (f"?account={owner.username}" if owner.id != viewer.account.id else "")
    return redirect(target, "approved" if decision == "approve" else "rejected")
