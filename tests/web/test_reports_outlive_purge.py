"""Reports are evidence: suspending a domain purges its accounts, never the reports about them."""

from __future__ import annotations

from sqlmodel import select

from app.models import Account, Report, Role, User
from app.services.account_moderation import AccountModerationService
from app.services.instance import InstanceAbout, InstanceService
from app.services.remote_accounts import RemoteAccountService
from tests.federation.delivery_helpers import local_account
from tests.lab import Lab
from tests.web.helpers import logged_in


async def test_a_report_stays_in_the_queue_after_its_domain_is_suspended(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    await local_account(b, "bob")
    staff = await logged_in(a, "carol")
    await staff.get("/search", params={"q": "@bob@b.test"})
    reported = await staff.post(
        "/moderate", {"target": "http://b.test/users/bob", "action": "report", "comment": "Harassment"}
    )
    assert reported.status_code == 303

    admin = await logged_in(a, "boss", role=Role.ADMIN)
    suspended = await admin.post("/admin/domains", {"domain": "b.test", "severity": "suspend"})
    assert suspended.status_code == 303
    async with a.context.sessions() as session:
        assert (await session.scalars(select(Account).where(Account.domain == "b.test"))).all() == []
        [report] = (await session.scalars(select(Report))).all()
    assert report.target_account_id is None
    assert (report.target_uri, report.target_handle) == ("http://b.test/users/bob", "bob@b.test")

    queue = await admin.get("/admin/reports")
    assert queue.status_code == 200
    assert "bob@b.test" in queue.text and "Harassment" in queue.text
    assert "No longer stored here" in queue.text
    assert (await admin.post(f"/admin/reports/{report.id}/resolve")).status_code == 303
    assert "No open reports." in (await admin.get("/admin/reports")).text


async def test_a_flag_keeps_naming_the_reported_account_and_survives_its_reporters_domain(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    _alice = await local_account(a, "alice")
    admin = await logged_in(a, "boss", role=Role.ADMIN)
    async with a.context.sessions() as session:
        alice = (await session.scalars(select(Account).where(Account.username == "alice"))).one()
        mallory = Account(
            username="mallory",
            domain="spam.test",
            uri="http://spam.test/users/mallory",
            inbox_url="http://spam.test/users/mallory/inbox",
        )
        session.add(mallory)
        await session.commit()
        await session.refresh(mallory)
    # A Flag from spam.test about a local account; then spam.test is suspended.
    await RemoteAccountService(a.context).report(
        mallory, alice, post_ids=[], comment="made up", uri="http://spam.test/flags/1"
    )
    assert (await admin.post("/admin/domains", {"domain": "spam.test"})).status_code == 303
    queue = (await admin.get("/admin/reports")).text
    assert "made up" in queue and ">alice</a>" in queue
    async with a.context.sessions() as session:
        [report] = (await session.scalars(select(Report))).all()
    assert report.reporter_account_id is None and report.target_handle == "alice"


async def test_the_queue_shows_a_report_s_category_and_the_rules_it_names(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    admin = await logged_in(a, "boss", role=Role.ADMIN)
    reporter = await local_account(a, "alice")
    target = await local_account(a, "mallory")
    async with a.context.sessions() as session:
        user = (await session.scalars(select(User).where(User.account_id == reporter.id))).one()
    await InstanceService(a.context).update_about(
        InstanceAbout(name="Town Hall", description="", rules=["Be kind", "No advertising"])
    )
    await AccountModerationService(a.context).report(
        user, reporter, target, comment="Adverts", category="violation", rule_ids=[2]
    )
    queue = (await admin.get("/admin/reports")).text
    assert "Adverts" in queue and "Rule violation" in queue and "rules 2" in queue
