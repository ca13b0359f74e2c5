"""Staff acting on one remote account from its search result: block, mute, report."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlmodel import col, select

from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import BadRequest, NotFound
from app.i18n import N_
from app.models import Account
from app.services.account_moderation import AccountModerationService, ModerationError
from app.web.notices import redirect
from app.web.session import Viewer, current_user
from app.web.templating import translate

router = APIRouter()

ACTIONS = {
    "block": "blocked",
    "unblock": "unblocked",
    "mute": "muted",
    "unmute": "unmuted",
    "report": "reported",
}


@router.post("/moderate")
async def moderate(
    request: Request,
    target: str = Form(""),
    action: str = Form(""),
    comment: str = Form(""),
    forward: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    if action not in ACTIONS:
        raise BadRequest(translate(request, N_("Choose what to do about the account.")))
    uri = target.strip()[:2048]
    async with context.sessions() as session:
        account = await session.scalar(select(Account).where(col(Account.uri) == uri)) if uri else None
    if account is None or account.domain is None:
        # Only accounts already looked up (search) and from elsewhere: local ones are the team.
        raise NotFound(translate(request, N_("That account is not known here.")))
    service = AccountModerationService(context, viewer)
    try:
        if action == "block":
            await service.block(viewer.account, account)
        elif action == "unblock":
            await service.unblock(viewer.account, account)
        elif action in ("mute", "unmute"):
            await service.mute(viewer.account, account, mute=action == "mute")
        else:
            await service.report(viewer.user, viewer.account, account, comment=comment, forward=bool(forward))
    except ModerationError as error:
        raise BadRequest(str(error)) from None
    return redirect("/search", ACTIONS[action], q=account.uri)
