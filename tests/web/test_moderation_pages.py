"""Staff acting on a remote account from its search result: block, mute, report (forwarded)."""

from __future__ import annotations

from sqlmodel import select

from app.models import Report
from tests.federation.delivery_helpers import local_account, settle
from tests.lab import Instance, Lab
from tests.web.helpers import logged_in


async def count(instance: Instance, model: type) -> int:
    async with instance.context.sessions() as session:
        return len((await session.scalars(select(model))).all())


async def test_staff_block_mute_and_report_from_the_search_page(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    await local_account(b, "bob")
    browser = await logged_in(a, "carol")
    page = await browser.get("/search", params={"q": "@bob@b.test"})
    assert page.status_code == 200 and 'action="/moderate"' in page.text
    for action in ["mute", "unmute", "block", "unblock"]:
        done = await browser.post("/moderate", {"target": "http://b.test/users/bob", "action": action})
        assert done.status_code == 303, action
    reported = await browser.post(
        "/moderate",
        {"target": "http://b.test/users/bob", "action": "report", "comment": "Spam", "forward": "1"},
    )
    assert reported.status_code == 303
    await settle(lab)
    assert await count(b, Report) == 1
    assert (
        await browser.post("/moderate", {"target": "http://b.test/users/bob", "action": "nuke"})
    ).status_code == 400
    assert (
        await browser.post("/moderate", {"target": "http://a.test/users/carol", "action": "block"})
    ).status_code == 404
    assert (await browser.post("/moderate", {"target": "", "action": "mute"})).status_code == 404


async def test_admins_work_through_the_report_queue(lab: Lab) -> None:
    from app.models import AuditLogEntry, Role

    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    await local_account(b, "bob")
    staff = await logged_in(a, "carol")
    await staff.get("/search", params={"q": "@bob@b.test"})
    await staff.post(
        "/moderate", {"target": "http://b.test/users/bob", "action": "report", "comment": "Rude <b>x</b>"}
    )
    assert (await staff.get("/admin/reports")).status_code in (403, 404)
    admin = await logged_in(a, "boss", role=Role.ADMIN)
    page = await admin.get("/admin/reports")
    assert page.status_code == 200 and "bob@b.test" in page.text and "Rude &lt;b&gt;x&lt;/b&gt;" in page.text
    async with a.context.sessions() as session:
        [report] = (await session.scalars(select(Report))).all()
    assert (await admin.post(f"/admin/reports/{report.id}/resolve")).status_code == 303
    assert (await admin.post(f"/admin/reports/{report.id}/resolve")).status_code == 404
    assert (await admin.post("/admin/reports/nope/resolve")).status_code in (400, 404)
    assert "No open reports." in (await admin.get("/admin/reports")).text
    async with a.context.sessions() as session:
        actions = set((await session.scalars(select(AuditLogEntry.action))).all())
    assert {"report.create", "report.resolve"} <= actions
