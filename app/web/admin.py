"""Administration: the team and who posts for the organisation, the About page, domain blocks, reports.

Federation health has its own module, federation_pages.py."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import PlainTextResponse, Response

from app.context import AppContext
from app.dependencies import get_context
from app.i18n import N_
from app.models import Role
from app.services.account_moderation import ReportQueue
from app.services.accounts import AccountError
from app.services.auth import AuthService
from app.services.domain_blocks import MAX_IMPORT_BYTES, DomainBlockError, DomainBlockService
from app.services.errors import NotFound as ServiceNotFound
from app.services.instance import (
    InstanceAbout,
    InstanceService,
    InstanceSettingsError,
)
from app.services.registrations import RegistrationService
from app.services.staff import StaffService
from app.web.audit_log import audit_lines
from app.web.ids import EntityId, parse_id
from app.web.notices import redirect
from app.web.session import Viewer, require_admin
from app.web.templating import render, translate

router = APIRouter(prefix="/admin")

ROLE_CHOICES = {"staff": Role.STAFF, "admin": Role.ADMIN}


async def _staff_page(
    request: Request,
    context: AppContext,
    *,
    error: str | None = None,
    invite: tuple[str, str] | None = None,
    status_code: int = 200,
    entered: dict[str, str] | None = None,
) -> Response:
    staff = StaffService(context)
    return render(
        request,
        "admin/staff.html",
        {
            "members": await staff.members(),
            "sign_ups": await RegistrationService(context).pending(),
            "organizations": await staff.organizations(),
            "audit": await audit_lines(
                context, await staff.audit_log(20), lambda message: translate(request, message)
            ),
            "error": error,
            "invite": invite,
            "entered": entered or {},
        },
        status_code=status_code,
    )


@router.get("")
async def admin_home(_viewer: Viewer = Depends(require_admin)) -> Response:
    return redirect("/admin/staff")


@router.get("/staff")
async def staff_list(
    request: Request, context: AppContext = Depends(get_context), _viewer: Viewer = Depends(require_admin)
) -> Response:
    return await _staff_page(request, context)


@router.post("/staff")
async def create_staff(
    request: Request,
    username: str = Form(""),
    display_name: str = Form(""),
    email: str = Form(""),
    kind: str = Form("staff"),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    entered = {"username": username, "display_name": display_name, "email": email, "kind": kind}
    if kind not in ("staff", "admin", "organization"):
        return await _staff_page(
            request, context, error=translate(request, N_("Choose a kind of account.")), status_code=400
        )
    try:
        created = await StaffService(context).create_member(
            username,
            by=viewer.user,
            role=Role.ADMIN if kind == "admin" else Role.STAFF,
            organization=kind == "organization",
            display_name=display_name.strip() or None,
            email=email.strip() or None,
        )
    except AccountError as error:
        return await _staff_page(request, context, error=str(error), status_code=400, entered=entered)
    if kind == "organization":
        return redirect("/admin/staff", "saved")
    link = AuthService(context).invite_url(created.user)
    return await _staff_page(request, context, invite=(created.account.username, link))


@router.post("/staff/{user_id}/invite")
async def new_invite(
    request: Request,
    user_id: EntityId,
    context: AppContext = Depends(get_context),
    _viewer: Viewer = Depends(require_admin),
) -> Response:
    try:
        member = await StaffService(context).member(user_id)
    except AccountError as error:
        return await _staff_page(request, context, error=str(error), status_code=404)
    if member.is_organization:
        message = N_("Organisation accounts have no password and no invite link: staff post as them.")
        return await _staff_page(request, context, error=translate(request, message), status_code=400)
    link = AuthService(context).invite_url(member.user)
    return await _staff_page(request, context, invite=(member.account.username, link))


@router.post("/staff/{user_id}/role")
async def change_role(
    request: Request,
    user_id: EntityId,
    role: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    if role not in ROLE_CHOICES:
        return await _staff_page(
            request, context, error=translate(request, N_("Choose a role.")), status_code=400
        )
    try:
        await StaffService(context).set_role(user_id, ROLE_CHOICES[role], by=viewer.user)
    except AccountError as error:
        return await _staff_page(request, context, error=str(error), status_code=400)
    return redirect("/admin/staff", "role_changed")


@router.post("/staff/{user_id}/disable")
async def disable(
    request: Request,
    user_id: EntityId,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    return await _set_disabled(request, context, viewer, user_id, disabled=True)


@router.post("/staff/{user_id}/enable")
async def enable(
    request: Request,
    user_id: EntityId,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    return await _set_disabled(request, context, viewer, user_id, disabled=False)


async def _set_disabled(
    request: Request, context: AppContext, viewer: Viewer, user_id: int, *, disabled: bool
) -> Response:
    try:
        await StaffService(context).set_disabled(user_id, disabled, by=viewer.user)
    except AccountError as error:
        return await _staff_page(request, context, error=str(error), status_code=400)
    return redirect("/admin/staff", "disabled" if disabled else "enabled")


@router.post("/sign-ups/{user_id}/{decision}")
async def decide_sign_up(
    request: Request,
    user_id: EntityId,
    decision: str,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    """Approve a sign-up waiting under REGISTRATIONS=approval, or reject (delete) it."""
    registrations = RegistrationService(context)
    if decision not in ("approve", "reject"):
        return await _staff_page(
            request, context, error=translate(request, N_("Choose what to do.")), status_code=400
        )
    try:
        if decision == "approve":
            await registrations.approve(user_id, by=viewer.user)
        else:
            await registrations.reject(user_id, by=viewer.user)
    except ServiceNotFound:
        message = translate(request, N_("There is no such sign-up waiting."))
        return await _staff_page(request, context, error=message, status_code=404)
    return redirect("/admin/staff", "sign_up_approved" if decision == "approve" else "sign_up_rejected")


@router.post("/organizations/{account_id}/delegates")
async def grant(
    request: Request,
    account_id: EntityId,
    user_id: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    grantee = parse_id(user_id)
    if grantee is None:
        return await _staff_page(
            request, context, error=translate(request, N_("Choose a staff member.")), status_code=400
        )
    try:
        await StaffService(context).grant_delegate(account_id, grantee, by=viewer.user)
    except AccountError as error:
        return await _staff_page(request, context, error=str(error), status_code=400)
    return redirect("/admin/staff", "granted")


@router.post("/organizations/{account_id}/delegates/{user_id}/revoke")
async def revoke(
    account_id: EntityId,
    user_id: EntityId,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    await StaffService(context).revoke_delegate(account_id, user_id, by=viewer.user)
    return redirect("/admin/staff", "revoked")


@router.get("/instance")
async def instance_form(
    request: Request, context: AppContext = Depends(get_context), _viewer: Viewer = Depends(require_admin)
) -> Response:
    about = await InstanceService(context).about()
    return render(request, "admin/instance.html", {"about": about, "error": None})


@router.post("/instance")
async def save_instance(
    request: Request,
    name: str = Form(""),
    description: str = Form(""),
    contact_email: str = Form(""),
    contact_account: str = Form(""),
    rules: str = Form(""),
    privacy_policy: str = Form(""),
    require_media_descriptions: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    about = InstanceAbout(
        name=name,
        description=description,
        contact_email=contact_email,
        contact_account=contact_account,
        rules=rules.splitlines(),
        privacy_policy=privacy_policy,
        require_media_descriptions=bool(require_media_descriptions),
    )
    try:
        await InstanceService(context, viewer).update_about(about, by_user_id=viewer.user.id)
    except InstanceSettingsError as error:
        return render(request, "admin/instance.html", {"about": about, "error": str(error)}, status_code=400)
    return redirect("/admin/instance", "saved")


async def _domains_page(
    request: Request,
    context: AppContext,
    *,
    error: str | None = None,
    status_code: int = 200,
    entered: dict[str, str] | None = None,
) -> Response:
    service = DomainBlockService(context)
    return render(
        request,
        "admin/domains.html",
        {
            "blocks": await service.blocks(),
            "allowed": await service.allowed(),
            "limited_federation": context.settings.limited_federation,
            "error": error,
            "entered": entered or {},
        },
        status_code=status_code,
    )


@router.get("/domains")
async def domains(
    request: Request, context: AppContext = Depends(get_context), _viewer: Viewer = Depends(require_admin)
) -> Response:
    return await _domains_page(request, context)


@router.post("/domains")
async def block_domain(
    request: Request,
    domain: str = Form(""),
    severity: str = Form("suspend"),
    reject_media: str = Form(""),
    reject_reports: str = Form(""),
    public_comment: str = Form(""),
    private_comment: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    entered = {
        "domain": domain[:300],
        "public_comment": public_comment[:1000],
        "private_comment": private_comment[:1000],
    }
    try:
        await DomainBlockService(context, viewer).block(
            domain,
            severity=severity,
            reject_media=bool(reject_media),
            reject_reports=bool(reject_reports),
            public_comment=public_comment,
            private_comment=private_comment,
            by=viewer.user,
        )
    except DomainBlockError as error:
        return await _domains_page(request, context, error=str(error), status_code=400, entered=entered)
    return redirect("/admin/domains", "domain_blocked")


@router.post("/domains/unblock")
async def unblock_domain(
    request: Request,
    domain: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    try:
        removed = await DomainBlockService(context, viewer).unblock(domain, by=viewer.user)
    except DomainBlockError as error:
        return await _domains_page(request, context, error=str(error), status_code=400)
    if not removed:
        return await _domains_page(
            request, context, error=translate(request, N_("That domain is not blocked.")), status_code=404
        )
    return redirect("/admin/domains", "domain_unblocked")


@router.post("/domains/import")
async def import_domains(
    request: Request,
    blocks_csv: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    if len(blocks_csv) > MAX_IMPORT_BYTES:
        return await _domains_page(
            request, context, error=translate(request, N_("The list is too long.")), status_code=400
        )
    result = await DomainBlockService(context, viewer).import_csv(blocks_csv, by=viewer.user)
    if result.skipped:
        # Said, not hidden behind "imported": the admin fixes those rows and imports them again.
        message = N_("%(imported)d domain blocks were imported; these rows were skipped: %(skipped)s")
        skipped = "; ".join(row[:200] for row in result.skipped[:20])
        return await _domains_page(
            request, context, error=translate(request, message, imported=result.imported, skipped=skipped)
        )
    return redirect("/admin/domains", "domains_imported")


@router.get("/domains/export.csv")
async def export_domains(
    context: AppContext = Depends(get_context), _viewer: Viewer = Depends(require_admin)
) -> Response:
    return PlainTextResponse(
        await DomainBlockService(context).export_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="domain_blocks.csv"'},
    )


@router.post("/domains/allow")
async def allow_domain(
    request: Request,
    domain: str = Form(""),
    remove: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    service = DomainBlockService(context, viewer)
    try:
        if remove:
            await service.disallow(domain, by=viewer.user)
        else:
            await service.allow(domain, by=viewer.user)
    except DomainBlockError as error:
        return await _domains_page(request, context, error=str(error), status_code=400)
    return redirect("/admin/domains", "domain_allowed")


@router.get("/reports")
async def reports(
    request: Request, context: AppContext = Depends(get_context), _viewer: Viewer = Depends(require_admin)
) -> Response:
    return render(request, "admin/reports.html", {"reports": await ReportQueue(context).open_reports()})


@router.post("/reports/{report_id}/resolve")
async def resolve_report(
    request: Request,
    report_id: EntityId,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    if not await ReportQueue(context).resolve(report_id, by=viewer.user):
        return render(
            request,
            "error.html",
            {"status_code": 404, "message": translate(request, N_("That report is not open."))},
            status_code=404,
        )
    return redirect("/admin/reports", "report_resolved")
