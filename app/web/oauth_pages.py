"""The OAuth authorize page: a logged-in person lets an app act as them, or as an organisation
account they post for. Errors about the request itself (an unknown app, a redirect URI it did not
register) are shown here and never sent to the redirect URI: that would make us an open redirector.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from app.context import AppContext
from app.dependencies import get_context
from app.i18n import N_
from app.models import OAuthApplication
from app.services.errors import Invalid, NotFound
from app.services.oauth import OOB_REDIRECT_URI, OAuthService
from app.services.staff import StaffService
from app.web.session import Viewer, page_state
from app.web.templating import render, translate

router = APIRouter()

SCOPE_WORDS = {
    "read": N_("read everything your account can see: posts, timelines, notifications, lists"),
    "write": N_("post, edit and delete, like and boost, and change your profile"),
    "follow": N_("follow, unfollow, block and mute accounts"),
    "push": N_("receive push notifications"),
    "profile": N_("see only your profile (who you are)"),
}
READ_PART = N_("read your %(what)s")
WRITE_PART = N_("change your %(what)s")


def scope_descriptions(request: Request, scopes: list[str]) -> list[tuple[str, str]]:
    described = []
    for scope in scopes:
        if scope in SCOPE_WORDS:
            words = translate(request, SCOPE_WORDS[scope])
        else:
            kind, _, what = scope.partition(":")
            words = translate(
                request, READ_PART if kind == "read" else WRITE_PART, what=what.replace(":", " ")
            )
        described.append((scope, words))
    return described


def redirect_to_app(redirect_uri: str, **values: str | None) -> Response:
    query = urlencode({name: value for name, value in values.items() if value is not None})
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{query}", status_code=302)


def _error_page(request: Request, message: str, status_code: int = 400) -> Response:
    return render(
        request, "error.html", {"status_code": status_code, "message": message}, status_code=status_code
    )


async def _checked(
    request: Request, context: AppContext, values: dict[str, Any]
) -> tuple[OAuthApplication, list[str]] | Response:
    if values.get("response_type", "code") != "code":
        return _error_page(request, translate(request, N_("Only response_type=code is supported.")))
    try:
        return await OAuthService(context).check_authorization_request(
            values.get("client_id") or "", values.get("redirect_uri") or "", values.get("scope")
        )
    except NotFound:
        return _error_page(
            request, translate(request, N_("No application is registered with this client_id."))
        )
    except Invalid as error:
        return _error_page(request, error.message)


async def _grant(
    request: Request,
    context: AppContext,
    viewer: Viewer,
    application: OAuthApplication,
    scopes: list[str],
    values: dict[str, Any],
    account_id: int,
) -> Response:
    try:
        code = await OAuthService(context).grant_code(
            viewer,
            application,
            redirect_uri=values["redirect_uri"],
            scopes=scopes,
            account_id=account_id,
            code_challenge=values.get("code_challenge") or None,
            code_challenge_method=values.get("code_challenge_method") or None,
        )
    except Invalid as error:
        return _error_page(request, error.message)
    if values["redirect_uri"] == OOB_REDIRECT_URI:
        return render(request, "oauth_code.html", {"application": application, "code": code})
    return redirect_to_app(values["redirect_uri"], code=code, state=values.get("state"))


FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


@router.get("/oauth/authorize")
@router.get("/oauth/authorize/")
async def authorize_form(
    request: Request, viewer: Viewer | None = Depends(page_state), context: AppContext = Depends(get_context)
) -> Response:
    values = {name: request.query_params.get(name) for name in FIELDS}
    checked = await _checked(request, context, values)
    if isinstance(checked, Response):
        return checked
    application, scopes = checked
    if viewer is None:
        target = f"/oauth/authorize?{request.url.query}"
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    force_login = (request.query_params.get("force_login") or "").lower() in ("1", "true", "yes")
    if not force_login:
        earlier = await OAuthService(context).previously_authorized(viewer.user.id, application.id, scopes)
        if earlier is not None and viewer.may_act_as(earlier):
            return await _grant(request, context, viewer, application, scopes, values, earlier)
    accounts = await StaffService(context).postable_accounts(viewer.user)
    return render(
        request,
        "oauth_authorize.html",
        {
            "application": application,
            "scopes": scope_descriptions(request, scopes),
            "accounts": accounts,
            "values": {name: value for name, value in values.items() if value is not None},
        },
    )


@router.post("/oauth/authorize")
@router.post("/oauth/authorize/")
async def authorize(
    request: Request, viewer: Viewer | None = Depends(page_state), context: AppContext = Depends(get_context)
) -> Response:
    form = await request.form()
    values = {name: value for name in FIELDS if isinstance(value := form.get(name), str)}
    checked = await _checked(request, context, values)
    if isinstance(checked, Response):
        return checked
    application, scopes = checked
    if viewer is None:
        return _error_page(request, translate(request, N_("Log in to see this page.")), 401)
    if form.get("decision") != "authorize":
        if values["redirect_uri"] == OOB_REDIRECT_URI:
            return redirect_to_app("/home")
        return redirect_to_app(values["redirect_uri"], error="access_denied", state=values.get("state"))
    chosen = form.get("account_id")
    try:
        account_id = int(chosen) if isinstance(chosen, str) and chosen else viewer.account.id
    except ValueError:
        return _error_page(request, translate(request, N_("Choose an account from the list.")))
    if not viewer.may_act_as(account_id):
        return _error_page(request, translate(request, N_("You may not act as this account.")), 403)
    return await _grant(request, context, viewer, application, scopes, values, account_id)


__all__ = ["router", "scope_descriptions"]
