"""POST /api/v1/reports: the token's account reports an account (and some of its posts) to this
server's admins, through the same service as the web UI; `forward` sends the report on to a
remote account's server, from the instance actor, as the web UI forwards it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.relationship import report_entity
from app.api.form_values import flag
from app.api.ids import MAX_ID, is_number
from app.api.params import WrongType, request_params
from app.api.v1.account_params import acting
from app.context import AppContext
from app.dependencies import get_context
from app.services.account_lookup import account_by_id
from app.services.account_moderation import MAX_REPORT_COMMENT, AccountModerationService

router = APIRouter(prefix="/api/v1")

MAX_REPORTED_STATUSES = 100


@router.post("/reports")
# Mastodon.py posts to `/api/v1/reports/`; a redirect would cost the client its body.
@router.post("/reports/", include_in_schema=False)
async def create_report(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:reports", user=True)),
) -> JSONResponse:
    params = await request_params(request)
    raw_id = params.text("account_id") or ""
    if not is_number(raw_id) or int(raw_id) > MAX_ID:
        raise WrongType("account_id: must be the id of an account")
    status_ids = params.texts("status_ids")
    if len(status_ids) > MAX_REPORTED_STATUSES:
        raise WrongType(f"status_ids: at most {MAX_REPORTED_STATUSES}")
    if not all(is_number(value) and int(value) <= MAX_ID for value in status_ids):
        raise WrongType("status_ids: must be ids")
    comment = params.text("comment") or ""
    if len(comment) > MAX_REPORT_COMMENT:
        raise WrongType(f"comment: at most {MAX_REPORT_COMMENT} characters")
    # Which categories and rules there are is the service's to say; here, only the shapes.
    category = params.text("category") or ("other" if comment else "spam")
    rule_ids = params.texts("rule_ids")
    if not all(is_number(value) and int(value) <= MAX_ID for value in rule_ids):
        raise WrongType("rule_ids: must be ids of this server's rules (GET /api/v1/instance/rules)")
    if caller.viewer.user is None:
        raise WrongType("this method requires an authenticated user")
    target = await account_by_id(context, caller.viewer, int(raw_id))
    report = await AccountModerationService(context, caller.viewer).report(
        caller.viewer.user,
        acting(caller),
        target,
        post_ids=[int(value) for value in status_ids],
        comment=comment,
        forward=bool(flag(params, "forward", False)),
        category=category,
        rule_ids=[int(value) for value in rule_ids],
    )
    return JSONResponse(report_entity(context, report, target))


__all__ = ["router"]
