"""Logging in and out, and accepting an invite link."""

from __future__ import annotations

import math

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import TooManyRequests
from app.i18n import N_, Catalogs
from app.services.accounts import AccountError
from app.services.auth import AuthService, InviteError, LoginError, RateLimited
from app.web.cookies import SESSION_COOKIE, clear_session_cookie, cookie_name, set_session_cookie
from app.web.notices import redirect
from app.web.session import (
    Viewer,
    anon_csrf_token,
    client_address,
    current_user,
    page_state,
    safe_next,
)
from app.web.templating import render, request_locale, translate

router = APIRouter()


@router.get("/login")
async def login_form(
    request: Request, next: str = "", username: str = "", viewer: Viewer | None = Depends(page_state)
) -> Response:
    if viewer is not None:
        return redirect(safe_next(next))
    anon_csrf_token(request)
    return render(
        request, "login.html", {"error": None, "next": safe_next(next, ""), "username": username[:64]}
    )


@router.post("/login")
async def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form(""),
    context: AppContext = Depends(get_context),
) -> Response:
    auth = AuthService(context)
    try:
        user = await auth.authenticate(username, password, ip=client_address(request))
    except RateLimited as limited:
        raise TooManyRequests(
            translate(
                request,
                N_("Too many failed log-in attempts from your address. Try again %(when)s."),
                when=retry_in_words(request, limited.retry_after),
            ),
            headers=limited.decision.headers(),
        ) from None
    except LoginError as error:
        anon_csrf_token(request)
        message = {
            "disabled": N_("This login has been disabled by an administrator."),
            "pending": N_("Your sign-up is waiting for an administrator's approval."),
            "organization": N_(
                "Nobody logs in as an organisation account. Log in as yourself and post as the organisation."
            ),
        }.get(error.reason, N_("Wrong user name or password."))
        return render(
            request,
            "login.html",
            {"error": translate(request, message), "next": safe_next(next, ""), "username": username[:64]},
            status_code=401,
        )
    token, _session = await auth.start_session(user, user_agent=request.headers.get("user-agent", ""))
    response = redirect(safe_next(next), "welcome" if not next else None)
    set_session_cookie(context, response, token)
    return response


def retry_in_words(request: Request, seconds: int) -> str:
    """'in 14 minutes', 'in 1 minute', 'in 30 seconds' in the reader's language: nobody counts seconds."""
    catalogs: Catalogs = request.app.state.catalogs
    locale = request_locale(request)

    def ngettext(singular: str, plural: str, number: int) -> str:
        return catalogs.ngettext(locale, singular, plural, number) % {"num": number}

    if seconds < 60:
        return ngettext("in %(num)d second", "in %(num)d seconds", seconds)
    return ngettext("in %(num)d minute", "in %(num)d minutes", math.ceil(seconds / 60))


@router.post("/logout")
async def logout(request: Request, context: AppContext = Depends(get_context)) -> Response:
    token = request.cookies.get(cookie_name(context, SESSION_COOKIE))
    if token:
        await AuthService(context).end_session(token)
    response = redirect("/login", "logged_out")
    clear_session_cookie(context, response)
    return response


@router.get("/invite/{token}")
async def invite_form(request: Request, token: str, context: AppContext = Depends(get_context)) -> Response:
    try:
        _user, account = await AuthService(context).user_for_invite(token)
    except InviteError as error:
        return render(request, "error.html", {"status_code": 404, "message": str(error)}, status_code=404)
    anon_csrf_token(request)
    return render(request, "invite.html", {"account": account, "error": None})


@router.post("/invite/{token}")
async def accept_invite(
    request: Request,
    token: str,
    password: str = Form(""),
    password_again: str = Form(""),
    context: AppContext = Depends(get_context),
) -> Response:
    auth = AuthService(context)
    try:
        _user, account = await auth.user_for_invite(token)
    except InviteError as error:
        return render(request, "error.html", {"status_code": 404, "message": str(error)}, status_code=404)
    error_message = None
    if password != password_again:
        error_message = translate(request, N_("The two passwords are not the same."))
    else:
        try:
            await auth.accept_invite(token, password)
        except (AccountError, InviteError) as error:
            error_message = str(error)
    if error_message:
        anon_csrf_token(request)
        return render(request, "invite.html", {"account": account, "error": error_message}, status_code=400)
    return redirect("/login", "password_set", username=account.username)


@router.get("/authorize_interaction")
async def authorize_interaction(uri: str = "", _viewer: Viewer = Depends(current_user)) -> Response:
    """Where other servers send our staff to follow someone: the search page shows them with a button."""
    return redirect("/search", q=uri.strip()[:2048])
