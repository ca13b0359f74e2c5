"""Admin → Announcements: write an announcement for everyone on the server (shown by their apps
between an optional start and end), and withdraw it."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.context import AppContext
from app.dependencies import get_context
from app.i18n import N_
from app.services.announcements import AnnouncementError, Announcements
from app.web.ids import EntityId
from app.web.notices import redirect
from app.web.session import Viewer, require_admin
from app.web.templating import render, translate

router = APIRouter(prefix="/admin/announcements")

# The service's refusals, for the translation catalog.
SERVICE_MESSAGES = (
    N_("An announcement needs some text."),
    N_("An announcement is at most 5000 characters long."),
    N_("The end must come after the start."),
)


def _moment(value: str, label: str) -> datetime | None:
    """A `datetime-local` field, read as UTC (the page says so)."""
    if not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=UTC)
    except ValueError:
        raise AnnouncementError(label) from None


async def _page(
    request: Request,
    context: AppContext,
    viewer: Viewer,
    *,
    error: str | None = None,
    entered: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/announcements.html",
        {
            "announcements": await Announcements(context, viewer).all(),
            "error": error,
            "entered": entered or {},
        },
        status_code=status_code,
    )


@router.get("")
async def announcements(
    request: Request, context: AppContext = Depends(get_context), viewer: Viewer = Depends(require_admin)
) -> Response:
    return await _page(request, context, viewer)


@router.post("")
async def publish(
    request: Request,
    text: str = Form(""),
    starts_at: str = Form(""),
    ends_at: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    entered = {"text": text, "starts_at": starts_at, "ends_at": ends_at}
    try:
        await Announcements(context, viewer).publish(
            text,
            starts_at=_moment(starts_at, translate(request, N_("The start is not a date and time."))),
            ends_at=_moment(ends_at, translate(request, N_("The end is not a date and time."))),
        )
    except AnnouncementError as error:
        return await _page(
            request, context, viewer, error=translate(request, str(error)), entered=entered, status_code=400
        )
    return redirect("/admin/announcements", "announced")


@router.post("/{announcement_id}/delete")
async def withdraw(
    announcement_id: EntityId,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    await Announcements(context, viewer).withdraw(announcement_id)
    return redirect("/admin/announcements", "announcement_withdrawn")


__all__ = ["router"]
