"""The sign-up page (REGISTRATIONS=approval or open): the same RegistrationService as the client
API's `POST /api/v1/accounts`. Closed (the default), it answers 404: staff are invited."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import NotFound
from app.i18n import N_
from app.services.errors import RateLimited
from app.services.instance import InstanceService
from app.services.registrations import RegistrationError, RegistrationService, SignUp
from app.web.notices import redirect
from app.web.session import Viewer, anon_csrf_token, client_address, page_state
from app.web.templating import render, request_locale, translate

router = APIRouter()


async def _page(
    request: Request,
    context: AppContext,
    *,
    entered: dict[str, str],
    error: str | None,
    status_code: int = 200,
) -> Response:
    anon_csrf_token(request)
    about = await InstanceService(context).about()
    return render(
        request,
        "sign_up.html",
        {
            "entered": entered,
            "error": error,
            "approval": RegistrationService(context).needs_approval,
            "rules": about.rules,
        },
        status_code=status_code,
    )


def _open(context: AppContext, request: Request) -> RegistrationService:
    registrations = RegistrationService(context)
    if registrations.mode == "closed":
        raise NotFound(translate(request, N_("Sign-ups are closed on this server. Ask its administrators.")))
    return registrations


@router.get("/auth/sign_up")
async def sign_up_form(
    request: Request, context: AppContext = Depends(get_context), viewer: Viewer | None = Depends(page_state)
) -> Response:
    _open(context, request)
    if viewer is not None:
        return redirect("/home")
    return await _page(request, context, entered={"username": "", "email": "", "reason": ""}, error=None)


@router.post("/auth/sign_up")
async def sign_up(
    request: Request,
    username: str = Form(""),
    email: str = Form(""),
    password: str = Form(""),
    reason: str = Form(""),
    agreement: str = Form(""),
    context: AppContext = Depends(get_context),
) -> Response:
    registrations = _open(context, request)
    entered = {"username": username[:64], "email": email[:320], "reason": reason[:1000]}
    try:
        await registrations.sign_up(
            SignUp(
                username=username,
                email=email,
                password=password,
                agreement=agreement == "on",
                locale=request_locale(request),
                reason=reason,
            ),
            address=client_address(request),
        )
    except RegistrationError as error:
        return await _page(request, context, entered=entered, error=str(error), status_code=400)
    except RateLimited as error:
        return await _page(request, context, entered=entered, error=str(error), status_code=429)
    return redirect(
        "/login", "signed_up_pending" if registrations.needs_approval else "signed_up", username=username
    )


__all__ = ["router"]
