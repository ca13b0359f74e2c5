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
