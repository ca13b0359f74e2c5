"""A staff member's settings: the profile (their own, or an organisation's they post for) and their login."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import Forbidden
from app.i18n import N_
from app.models import Account
from app.services.accounts import AccountError
from app.services.auth import AuthService
from app.services.profile_settings import (
    MAX_FIELDS,
    MAX_UPLOAD_BYTES,
    ProfileChanges,
    ProfileError,
    ProfileSettingsService,
)
from app.services.staff import StaffService
from app.web.notices import redirect
from app.web.session import Viewer, current_user
from app.web.templating import render, translate

router = APIRouter(prefix="/settings")


async def _editable_account(
    request: Request, context: AppContext, viewer: Viewer, username: str | None
) -> tuple[Account, list[Account]]:
    accounts = await StaffService(context).postable_accounts(viewer.user)
    if not username:
        return accounts[0], accounts
    for account in accounts:
        if account.username == username.lower():
            return account, accounts
    raise Forbidden(translate(request, N_("You may not edit this account's profile.")))


def profile_service(context: AppContext, viewer: Viewer) -> ProfileSettingsService:
    return ProfileSettingsService(context, viewer=viewer)


@router.get("/profile")
async def profile_form(
    request: Request,
    account: str | None = None,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    editing, choices = await _editable_account(request, context, viewer, account)
    form = profile_service(context, viewer).form(editing)
    return render(request, "settings/profile.html", _profile_values(editing, choices, form, None))


def _profile_values(
    editing: Account, choices: list[Account], form: object, error: str | None
) -> dict[str, object]:
    return {
        "editing": editing,
        "choices": choices,
        "form": form,
        "error": error,
        "max_fields": MAX_FIELDS,
        "max_upload_mb": MAX_UPLOAD_BYTES // (1024 * 1024),
    }


@router.post("/profile")
async def save_profile(
    request: Request,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    form = await request.form()

    def text(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    editing, choices = await _editable_account(request, context, viewer, text("account") or None)
    service = profile_service(context, viewer)
    changes = ProfileChanges(
        display_name=text("display_name"),
        bio=text("bio"),
        fields=[(text(f"field_name_{index}"), text(f"field_value_{index}")) for index in range(MAX_FIELDS)],
        locked=text("locked") == "on",
        discoverable=text("discoverable") == "on",
        aliases=text("aliases").split(),
    )
    try:
        await service.update(editing.id, changes)
        for kind in ("avatar", "header"):
            upload = form.get(kind)
            if isinstance(upload, UploadFile) and upload.filename:
                data = await upload.read(MAX_UPLOAD_BYTES + 1)
                await service.set_picture(editing.id, kind, data)
            elif text(f"remove_{kind}") == "on":
                await service.remove_picture(editing.id, kind)
    except ProfileError as error:
        entered = service.form(editing)
        entered = type(entered)(
            display_name=changes.display_name,
            bio=changes.bio,
            fields=[(name, value, False) for name, value in changes.fields],
            locked=changes.locked,
            discoverable=changes.discoverable,
            aliases=list(changes.aliases),
        )
        return render(
            request,
            "settings/profile.html",
            _profile_values(editing, choices, entered, str(error)),
            status_code=400,
        )
    target = "/settings/profile" + (f"?account={editing.username}" if editing.id != viewer.account.id else "")
    return redirect(target, "saved")


@router.get("/account")
async def account_form(request: Request, viewer: Viewer = Depends(current_user)) -> Response:
    return render(request, "settings/account.html", {"error": None})


@router.post("/language")
async def save_language(
    request: Request, context: AppContext = Depends(get_context), viewer: Viewer = Depends(current_user)
) -> Response:
    form = await request.form()
    locale = form.get("locale")
    try:
        await profile_service(context, viewer).set_locale(
            viewer.user.id, locale if isinstance(locale, str) else None
        )
    except ProfileError as error:
        return render(request, "settings/account.html", {"error": str(error)}, status_code=400)
    return redirect("/settings/account", "saved")


@router.post("/password")
async def change_password(
    request: Request, context: AppContext = Depends(get_context), viewer: Viewer = Depends(current_user)
) -> Response:
    form = await request.form()
    current, new, again = (
        form.get(key) for key in ("current_password", "new_password", "new_password_again")
    )
    if not isinstance(current, str) or not isinstance(new, str) or new != again:
        error = translate(request, N_("The two new passwords are not the same."))
        return render(request, "settings/account.html", {"error": error}, status_code=400)
    try:
        await AuthService(context).change_password(
            viewer.user, current, new, keep_session_id=viewer.session.id
        )
    except AccountError as error:
        return render(request, "settings/account.html", {"error": str(error)}, status_code=400)
    return redirect("/settings/account", "password_changed")
