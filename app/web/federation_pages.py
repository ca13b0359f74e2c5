"""Admin → Federation: the delivery queue, the inbox backlog, charts of the week, a page per domain."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.context import AppContext
from app.dependencies import get_context
from app.i18n import N_
from app.services.delivery_history import DeliveryHistoryService, DomainFigure, UnknownHostName, checked_host
from app.services.inbox_backlog import inbox_backlog
from app.services.instance import DeliveryStatusService
from app.web.charts import ranked_bars, stacked_hourly_bars, swatch
from app.web.notices import redirect
from app.web.session import Viewer, require_admin
from app.web.templating import render, translate

router = APIRouter(prefix="/admin/federation")

DOMAIN_PAGE = "/admin/federation/domains/"


def _seconds_in_words(request: Request, seconds: float) -> str:
    if seconds < 120:
        return translate(request, N_("%(count)s s"), count=round(seconds))
    if seconds < 7200:
        return translate(request, N_("%(count)s min"), count=round(seconds / 60))
    return translate(request, N_("%(count)s h"), count=round(seconds / 3600))


def _ranking(request: Request, title: str, figures: list[DomainFigure], words: str) -> object:
    rows = [
        (figure.host, figure.value, translate(request, words, count=round(figure.value)))
        for figure in figures
    ]
    return ranked_bars(title, rows, link_prefix=DOMAIN_PAGE)


@router.get("")
async def federation(
    request: Request, context: AppContext = Depends(get_context), viewer: Viewer = Depends(require_admin)
) -> Response:
    overview = await DeliveryStatusService(context, viewer).overview()
    backlog = await inbox_backlog(context)
    charts = DeliveryHistoryService(context, viewer)
    history = await charts.per_hour()
    depth = await charts.queue_depth_per_hour()
    slowest = await charts.slowest()
    waiting = translate(request, N_("waiting"))
    return render(
        request,
        "admin/federation.html",
        {
            "overview": overview,
            "backlog": backlog,
            "backlog_limit": context.settings.inbox_backlog_limit_seconds,
            "history": history,
            "chart": stacked_hourly_bars(
                translate(request, N_("Deliveries per hour, last 7 days (UTC)")),
                history.hours,
                [
                    (translate(request, N_("delivered")), history.done),
                    (translate(request, N_("failed")), history.failed),
                ],
            ),
            "depth_chart": stacked_hourly_bars(
                translate(request, N_("Deliveries waiting, last 7 days (UTC)")),
                depth.hours,
                [(waiting, depth.values)],
            ),
            "failing_chart": _ranking(
                request,
                translate(request, N_("Most failed deliveries, last 7 days")),
                await charts.most_failing(),
                N_("%(count)s failed"),
            ),
            "slowest_chart": ranked_bars(
                translate(request, N_("Slowest to receive our posts, last 7 days")),
                [(figure.host, figure.value, _seconds_in_words(request, figure.value)) for figure in slowest],
                link_prefix=DOMAIN_PAGE,
            ),
            "incoming_chart": _ranking(
                request,
                translate(request, N_("Most activities received, last 7 days")),
                await charts.incoming_by_domain(),
                N_("%(count)s received"),
            ),
            "has_failing": bool(history.total_failed),
            "has_slowest": bool(slowest),
            "swatch": swatch,
        },
    )


@router.get("/domains/{host}")
async def domain_page(
    request: Request,
    host: str,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    try:
        report = await DeliveryHistoryService(context, viewer).domain_report(host)
    except UnknownHostName as error:
        return render(request, "error.html", {"status_code": 400, "message": str(error)}, status_code=400)
    return render(
        request,
        "admin/federation_domain.html",
        {
            "report": report,
            "deliveries_chart": stacked_hourly_bars(
                translate(
                    request, N_("Deliveries per hour to %(domain)s, last 7 days (UTC)"), domain=report.host
                ),
                report.deliveries.hours,
                [
                    (translate(request, N_("delivered")), report.deliveries.done),
                    (translate(request, N_("failed")), report.deliveries.failed),
                ],
            ),
            "incoming_chart": stacked_hourly_bars(
                translate(
                    request,
                    N_("Activities received per hour from %(domain)s, last 7 days (UTC)"),
                    domain=report.host,
                ),
                report.incoming.hours,
                [(translate(request, N_("received")), report.incoming.values)],
            ),
            "incoming_total": sum(report.incoming.values),
            "swatch": swatch,
        },
    )


@router.post("/retry")
async def retry(
    request: Request,
    host: str = Form(""),
    back: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(require_admin),
) -> Response:
    try:
        name = checked_host(host)
    except UnknownHostName:
        return render(
            request,
            "error.html",
            {"status_code": 400, "message": translate(request, N_("Name the domain to retry."))},
            status_code=400,
        )
    await DeliveryStatusService(context, viewer).retry_domain(name, by_user_id=viewer.user.id)
    # From a domain's own page, back to it; otherwise to the overview.
    target = DOMAIN_PAGE + quote(name, safe=":[]") if back == "domain" else "/admin/federation"
    return redirect(target, "retried")
