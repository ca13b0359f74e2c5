"""Settings → Applications (the apps a person authorized, and revoking them) and Settings →
Development (making an application and its token for a script or a bot)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.context import AppContext
from app.dependencies import get_context
from app.i18n import N_
from app.services.errors import Invalid
from app.services.oauth import OAuthService
from app.services.staff import StaffService
from app.web.notices import redirect
from app.web.session import Viewer, current_user
from app.web.templating import render, translate

router = APIRouter(prefix="/settings")


@router.get("/applications")
async def applications(
    request: Request, context: AppContext = Depends(get_context), viewer: Viewer = Depends(current_user)
) -> Response:
    authorized = await OAuthService(context).authorized_apps(viewer.user.id)
    return render(request, "settings/applications.html", {"authorized": authorized})


@router.post("/applications/{application_id}/revoke")
async def revoke(
    application_id: int, context: AppContext = Depends(get_context), viewer: Viewer = Depends(current_user)
) -> Response:
    await OAuthService(context).revoke_app_for_user(viewer.user.id, application_id)
    return redirect("/settings/applications")


async def _development_page(
    request: Request,
    context: AppContext,
    viewer: Viewer,
    *,
    token: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    accounts = await StaffService(context).postable_accounts(viewer.user)
    return render(
        request,
        "settings/development.html",
        {"accounts": accounts, "token": token, "error": error},
        status_code=status_code,
    )


@router.get("/development")
async def development(
    request: Request, context: AppContext = Depends(get_context), viewer: Viewer = Depends(current_user)
) -> Response:
    return await _development_page(request, context, viewer)


@router.post("/development")
async def create_application(
    request: Request,
    name: str = Form(""),
    scopes: str = Form("read write follow push"),
    account_id: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    accounts = {account.id: account for account in await StaffService(context).postable_accounts(viewer.user)}
    acting = accounts.get(int(account_id)) if account_id.isdigit() else viewer.account
    if acting is None:
        message = translate(request, N_("You may not act as this account."))
        return await _development_page(request, context, viewer, error=message, status_code=403)
    try:
        token = await OAuthService(context).issue_personal_token(
            viewer.user, scopes=scopes, app_name=name, acting_as=acting
        )
    except Invalid as error:
        return await _development_page(request, context, viewer, error=error.message, status_code=422)
    return await _development_page(request, context, viewer, token=token)


__all__ = ["router"]
