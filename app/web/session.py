"""Who is looking at a page: the session cookie, CSRF tokens, and the access rules of staff pages.

Dependencies, in the order a request meets them:
- `page_state` (on every web router): finds the logged-in staff member, the language and the
  instance name, and stores them on `request.state` for the templates;
- `verify_csrf` (on every web router): a POST must carry the form's CSRF token, or it is a 403;
- `current_user` / `require_admin` (per route): staff pages and admin pages.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from app.config import is_loopback_domain
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import Forbidden, HttpError, error_response
from app.http_uploads import UploadTooLarge
from app.i18n import N_, negotiate, supported
from app.models import Account, User, WebSession
from app.services.auth import AuthService
from app.services.instance import InstanceService
from app.services.media import UPLOAD_LIMIT
from app.services.viewer import Viewer as ServiceViewer
from app.services.viewer import person_viewer
from app.web.cookies import ANON_CSRF_COOKIE, SESSION_COOKIE, cookie_name
from app.web.templating import Site, translate

# A form with files may carry one full upload and the rest of the form.
WEB_UPLOAD_LIMIT = UPLOAD_LIMIT + 1024 * 1024
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True, kw_only=True)
class Viewer(ServiceViewer):
    """A logged-in staff member: the viewer the services are given, and the browser session."""

    user: User
    account: Account
    session: WebSession

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token


class LoginRequired(HttpError):
    status_code = 401


class AdminRequired(Forbidden):
    pass


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def page_state(request: Request, context: AppContext = Depends(get_context)) -> Viewer | None:
    cached = getattr(request.state, "page_state_loaded", False)
    if cached:
        viewer: Viewer | None = request.state.viewer
        return viewer
    viewer = None
    token = request.cookies.get(cookie_name(context, SESSION_COOKIE))
    if token:
        signed_in = await AuthService(context).session_for_token(token)
        if signed_in is not None:
            who = await person_viewer(context, signed_in.user, signed_in.account)
            viewer = Viewer(
                user=signed_in.user,
                account=signed_in.account,
                session=signed_in.session,
                acting_ids=who.acting_ids,
                is_admin=who.is_admin,
            )
            if signed_in.renewed:
                request.state.renewed_session_token = token
    request.state.viewer = viewer
    request.state.locale = (
        supported(viewer.user.locale) if viewer and viewer.user.locale else None
    ) or negotiate(request.headers.get("accept-language"))
    settings = context.settings
    request.state.site = Site(
        name=await InstanceService(context).name(),
        local_domain=settings.local_domain,
        base_url=settings.base_url,
        max_post_chars=settings.max_post_chars,
        registrations=settings.registrations,
    )
    # Read once per page: templates decide from it which remote media they may embed.
    request.state.domain_policy = await context.domain_policy.current()
    request.state.page_state_loaded = True
    return viewer


async def current_user(request: Request, viewer: Viewer | None = Depends(page_state)) -> Viewer:
    if viewer is None:
        raise LoginRequired(translate(request, N_("Log in to see this page.")))
    return viewer


async def require_admin(request: Request, viewer: Viewer = Depends(current_user)) -> Viewer:
    if not viewer.is_admin:
        raise AdminRequired(translate(request, N_("Only administrators can open this page.")))
    return viewer


def anon_csrf_token(request: Request) -> str:
    """The CSRF token of forms shown before logging in: a random value also kept in a cookie."""
    context: AppContext = request.app.state.context
    existing = request.cookies.get(cookie_name(context, ANON_CSRF_COOKIE))
    if existing and 20 <= len(existing) <= 100:
        token = existing
    else:
        token = getattr(request.state, "new_anon_csrf", None) or secrets.token_urlsafe(24)
        request.state.new_anon_csrf = token
    request.state.anon_csrf = token
    return token


async def verify_csrf(
    request: Request,
    viewer: Viewer | None = Depends(page_state),
    context: AppContext = Depends(get_context),
) -> None:
    """Every state-changing form carries the session's token (or, before login, the cookie's)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    origin = request.headers.get("origin")
    if origin and origin != "null" and not _trusted_origin(request, context, _origin_of(origin)):
        raise Forbidden(translate(request, N_("This form was sent from another site and was refused.")))
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        # Forms with files (the composer's pictures): refused before a byte is read when larger
        # than an upload may be; browsers always say how large a form is.
        declared = request.headers.get("content-length", "")
        if not declared.isdigit() or int(declared) > WEB_UPLOAD_LIMIT:
            raise UploadTooLarge(
                translate(request, N_("The files are too large: at most 99 MB may be sent at once."))
            )
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = (
        viewer.csrf_token
        if viewer is not None
        else request.cookies.get(cookie_name(context, ANON_CSRF_COOKIE))
    )
    if not isinstance(sent, str) or not expected or not secrets.compare_digest(sent, expected):
        raise Forbidden(
            translate(
                request,
                N_(
                    "The form's security token is missing or out of date (CSRF check). "
                    "Go back, reload the page and send the form again."
                ),
            )
        )


def _trusted_origin(request: Request, context: AppContext, origin: str) -> bool:
    """Whether a form sent from `origin` comes from Herold's own pages.

    In production only the configured WEB_DOMAIN is. A development instance (WEB_DOMAIN on
    loopback, `localhost:8000` by default) is also reached as 127.0.0.1:8000 or [::1]:8000, the
    address the server listens on: a loopback origin counts there when it is the very origin the
    request was sent to (its Host), so a page of another local server or port is still refused.
    """
    settings = context.settings
    if origin == _origin_of(settings.base_url):
        return True
    if not is_loopback_domain(settings.web_domain):
        return False
    host = request.headers.get("host", "")
    own = _origin_of(f"{request.url.scheme}://{host}")
    return origin == own and is_loopback_domain(urlsplit(origin).netloc)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def safe_next(target: str | None, default: str = "/home") -> str:
    """A local path to return to after logging in; anything else (another site, //host) is ignored."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 32 for ch in target):
        return default
    return target


def install_session_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, error: LoginRequired) -> Response:
        if request.method in ("GET", "HEAD"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return error_response(request, 401, error.message)
