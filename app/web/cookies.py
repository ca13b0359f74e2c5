"""The session and pre-login CSRF cookies: their names and how they are set.

Apart from app.web.session so that app.web.templating, which renews them on a page's answer, does
not import the module that imports it.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from app.context import AppContext
from app.services.auth import SESSION_LIFETIME

SESSION_COOKIE = "herold_session"
ANON_CSRF_COOKIE = "herold_csrf"


def cookie_name(context: AppContext, base: str) -> str:
    # Under HTTPS the __Host- prefix makes browsers refuse the cookie unless Secure, Path=/ and host-only.
    return f"__Host-{base}" if context.settings.https else base


def set_anon_csrf_cookie(request: Request, response: Response, token: str) -> None:
    context: AppContext = request.app.state.context
    response.set_cookie(
        cookie_name(context, ANON_CSRF_COOKIE),
        token,
        httponly=True,
        samesite="lax",
        secure=bool(context.settings.https),
        path="/",
    )


def set_session_cookie(context: AppContext, response: Response, token: str) -> None:
    response.set_cookie(
        cookie_name(context, SESSION_COOKIE),
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=bool(context.settings.https),
        path="/",
    )


def clear_session_cookie(context: AppContext, response: Response) -> None:
    response.delete_cookie(
        cookie_name(context, SESSION_COOKIE),
        path="/",
        httponly=True,
        samesite="lax",
        secure=bool(context.settings.https),
    )
