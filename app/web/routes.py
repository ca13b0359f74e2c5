"""Public HTML pages: the front page (and first-admin setup), the about page."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.context import AppContext
from app.http_errors import Forbidden, NotFound
from app.models import Role
from app.services.accounts import AccountError, AccountService
from app.services.instance import InstanceService
from app.web.dependencies import get_context

router = APIRouter()


@router.get("/")
async def front_page(request: Request, context: AppContext = Depends(get_context)) -> Response:
    accounts = AccountService(context)
    templates = request.app.state.templates
    if await accounts.count_users() == 0:
        return templates.TemplateResponse(request, "setup.html", {"error": None, "username": ""})
    instance = InstanceService(context)
    listed = [item.account for item in await accounts.list_local_accounts() if item.account.discoverable]
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            "instance_name": await instance.name(),
            "description": await instance.description(),
            "accounts": listed,
            "local_domain": context.settings.local_domain,
        },
    )


@router.post("/setup")
async def create_first_admin(
    request: Request,
    setup_token: str = Form(""),
    username: str = Form(""),
    password: str = Form(""),
    context: AppContext = Depends(get_context),
) -> Response:
    accounts = AccountService(context)
    if await accounts.count_users() > 0:
        raise NotFound("setup is already done; log in instead")
    if not secrets.compare_digest(setup_token.strip(), context.setup_token):
        raise Forbidden("the setup token is wrong: copy it from the server's console output")
    try:
        await accounts.create_local_account(username, role=Role.ADMIN, password=password or "")
    except AccountError as error:
        templates = request.app.state.templates
        return templates.TemplateResponse(
            request, "setup.html", {"error": str(error), "username": username}, status_code=400
        )
    return RedirectResponse(context.urls.profile_page(accounts.normalize_username(username)), status_code=303)


@router.get("/about")
async def about(request: Request, context: AppContext = Depends(get_context)) -> Response:
    instance = InstanceService(context)
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "about.html",
        {
            "instance_name": await instance.name(),
            "description": await instance.description(),
            "local_domain": context.settings.local_domain,
        },
    )
