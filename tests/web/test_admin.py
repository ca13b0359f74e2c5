"""Administration pages: the team and its roles, posting for the organisation, About, federation health."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from app.models import (
    Account,
    AccountDelegate,
    AuditLogEntry,
    DeliveryJob,
    DomainHealth,
    InboxItem,
    JobState,
    OutboxActivity,
    Role,
    User,
)
from app.models.base import utcnow
from tests.lab import Instance, Lab
from tests.web.helpers import logged_in, make_user


async def user_id(instance: Instance, username: str) -> int:
    async with instance.context.sessions() as session:
        found = await session.scalar(
            select(User.id)
            .join(Account, col(Account.id) == col(User.account_id))
            .where(Account.username == username)
        )
    assert found is not None
    return found


async def test_admin_creates_staff_changes_roles_and_keeps_one_admin(instance: Instance) -> None:
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    made = await admin.post(
        "/admin/staff", {"username": "Carol", "display_name": "Carol C.", "kind": "admin"}
    )
    assert made.status_code == 200
    assert "Invite link for @carol" in made.text
    taken = await admin.post("/admin/staff", {"username": "carol", "kind": "staff"})
    assert taken.status_code == 400
    assert "already taken" in taken.text
    assert 'value="carol"' in taken.text  # what was typed stays in the form
    bad = await admin.post("/admin/staff", {"username": "x y", "kind": "staff"})
    assert bad.status_code == 400
    assert (await admin.post("/admin/staff", {"username": "dave", "kind": "overlord"})).status_code == 400

    carol = await user_id(instance, "carol")
    boss = await user_id(instance, "boss")
    assert (await admin.post(f"/admin/staff/{carol}/role", {"role": "staff"})).status_code == 303
    last = await admin.post(f"/admin/staff/{boss}/role", {"role": "staff"})
    assert last.status_code == 400
    assert "last administrator" in last.text
    assert (await admin.post(f"/admin/staff/{boss}/disable")).status_code == 400
    assert (await admin.post(f"/admin/staff/{carol}/role", {"role": "emperor"})).status_code == 400
    assert (await admin.post("/admin/staff/not-a-number/role", {"role": "staff"})).status_code == 400
    assert (await admin.post("/admin/staff/12345/invite")).status_code == 404

    invite = await admin.post(f"/admin/staff/{carol}/invite")
    assert "Invite link for @carol" in invite.text
    async with instance.context.sessions() as session:
        actions = set((await session.scalars(select(AuditLogEntry.action))).all())
    assert {"staff.create", "staff.role"} <= actions


async def test_admin_grants_and_revokes_posting_as_the_organisation(instance: Instance) -> None:
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    await make_user(instance, "alice")
    made = await admin.post("/admin/staff", {"username": "townhall", "kind": "organization"})
    assert made.status_code == 303
    async with instance.context.sessions() as session:
        org = (await session.scalars(select(Account).where(Account.username == "townhall"))).one()
    assert org.actor_type == "Organization"
    alice = await user_id(instance, "alice")
    granted = await admin.post(f"/admin/organizations/{org.id}/delegates", {"user_id": str(alice)})
    assert granted.status_code == 303
    page = await admin.get("/admin/staff")
    assert "Revoke for @alice" in page.text
    async with instance.context.sessions() as session:
        assert len((await session.scalars(select(AccountDelegate))).all()) == 1
    # Granting on something that is not an organisation is refused with a message.
    not_org = await admin.post("/admin/organizations/1/delegates", {"user_id": str(alice)})
    assert not_org.status_code == 400
    assert (await admin.post(f"/admin/organizations/{org.id}/delegates", {"user_id": "x"})).status_code == 400
    revoked = await admin.post(f"/admin/organizations/{org.id}/delegates/{alice}/revoke")
    assert revoked.status_code == 303
    async with instance.context.sessions() as session:
        assert (await session.scalars(select(AccountDelegate))).all() == []


async def test_instance_settings_fill_the_about_page(instance: Instance) -> None:
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    form = await admin.get("/admin/instance")
    assert 'name="privacy_policy"' in form.text
    saved = await admin.post(
        "/admin/instance",
        {
            "name": "Town Hall Social",
            "description": "The town hall's own corner of the fediverse.",
            "contact_email": "press@town.example",
            "contact_account": "@Boss",
            "rules": "Be kind.\n\nNo spam.\n",
            "privacy_policy": "We keep what you post.\n\nAsk us: https://town.example/privacy",
        },
    )
    assert saved.status_code == 303
    about = await admin.client.get("/about")
    assert "Town Hall Social" in about.text
    assert "press@town.example" in about.text
    assert "<li>Be kind.</li>" in about.text and "<li>No spam.</li>" in about.text
    assert '<a href="https://town.example/privacy"' in about.text
    assert 'href="http://a.test/@boss"' in about.text
    front = await admin.client.get("/")
    assert "The town hall&#39;s own corner" in front.text or "The town hall's own corner" in front.text

    for data, message in (
        ({"name": ""}, "1 to 100 characters"),
        ({"name": "Ok", "contact_email": "not an address"}, "not an e-mail address"),
        ({"name": "Ok", "contact_account": "ghost"}, "no local account"),
        ({"name": "Ok", "privacy_policy": "x" * 60_000}, "at most"),
    ):
        refused = await admin.post("/admin/instance", data)
        assert refused.status_code == 400, data
        assert message in refused.text, data


async def test_federation_page_shows_failing_domains_and_retries_them(lab: Lab) -> None:
    # No worker: the jobs stay as this test leaves them.
    instance = await lab.instance("a.test", embedded_worker=False)
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    now = utcnow()
    async with instance.context.sessions() as session:
        boss = (await session.scalars(select(Account).where(Account.username == "boss"))).one()
        activity = OutboxActivity(
            uri="http://a.test/x", activity_type="Create", account_id=boss.id, payload={}
        )
        session.add(activity)
        await session.flush()
        session.add_all(
            [
                DeliveryJob(
                    activity_id=activity.id,
                    inbox_url="https://down.example/inbox",
                    host="down.example",
                    state=JobState.FAILED,
                    attempts=16,
                    last_status=503,
                    last_error="503 Service Unavailable",
                    finished_at=now,
                ),
                DeliveryJob(
                    activity_id=activity.id,
                    inbox_url="https://down.example/users/x/inbox",
                    host="down.example",
                    next_attempt_at=now + timedelta(hours=3),
                    attempts=5,
                    last_error="connection refused",
                ),
                DeliveryJob(
                    activity_id=activity.id,
                    inbox_url="https://strict.example/inbox",
                    host="strict.example",
                    state=JobState.FAILED,
                    last_status=403,
                    last_error="403 Forbidden",
                    finished_at=now,
                ),
            ]
        )
        session.add(DomainHealth(host="down.example", failure_days=7, unavailable_since=now))
        await session.commit()

    page = await admin.get("/admin/federation")
    assert page.status_code == 200
    assert "down.example" in page.text and "Unavailable" in page.text
    assert "strict.example" in page.text
    # The inbox backlog, with the refusal it leads to past INBOX_BACKLOG_LIMIT_SECONDS.
    assert "Incoming activities waiting" in page.text and "Inbox refusing" not in page.text
    async with instance.context.sessions() as session:
        session.add(
            InboxItem(activity_uri="https://b.example/1", next_attempt_at=now - timedelta(seconds=90))
        )
        await session.commit()
    page = await admin.get("/admin/federation")
    assert "Inbox refusing (503)" in page.text

    retried = await admin.post("/admin/federation/retry", {"host": "down.example"})
    assert retried.status_code == 303
    assert retried.headers["location"] == "/admin/federation?notice=retried"
    async with instance.context.sessions() as session:
        jobs = (await session.scalars(select(DeliveryJob).where(DeliveryJob.host == "down.example"))).all()
        health = (await session.scalars(select(DomainHealth))).one()
    assert all(job.state == JobState.QUEUED and job.next_attempt_at <= utcnow() for job in jobs)
    assert health.unavailable_since is None and health.failure_days == 0
    # A permanent refusal is not retried.
    await admin.post("/admin/federation/retry", {"host": "strict.example"})
    async with instance.context.sessions() as session:
        strict = (
            await session.scalars(select(DeliveryJob).where(DeliveryJob.host == "strict.example"))
        ).one()
    assert strict.state == JobState.FAILED
    assert (await admin.post("/admin/federation/retry", {"host": ""})).status_code == 400


async def test_federation_page_charts_deliveries_per_hour(lab: Lab) -> None:
    instance = await lab.instance("a.test", embedded_worker=False)
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    hour = utcnow().replace(minute=5, second=0, microsecond=0)
    async with instance.context.sessions() as session:
        boss = (await session.scalars(select(Account).where(Account.username == "boss"))).one()
        activity = OutboxActivity(
            uri="http://a.test/y", activity_type="Create", account_id=boss.id, payload={}
        )
        session.add(activity)
        await session.flush()
        finished = [(hour, JobState.DONE)] * 3 + [(hour, JobState.FAILED)]
        finished += [(hour - timedelta(hours=30), JobState.DONE)] * 2
        # Older than the chart's week: left out.
        finished += [(hour - timedelta(days=8), JobState.DONE)] * 5
        for number, (when, state) in enumerate(finished):
            session.add(
                DeliveryJob(
                    activity_id=activity.id,
                    inbox_url=f"https://h{number}.example/inbox",
                    host=f"h{number}.example",
                    state=state,
                    finished_at=when,
                )
            )
        await session.commit()
    page = await admin.get("/admin/federation")
    assert page.status_code == 200
    assert '<svg class="chart"' in page.text
    assert 'aria-label="Deliveries per hour, last 7 days (UTC)"' in page.text
    label = hour.strftime("%Y-%m-%d %H:00")
    assert f"<title>{label} UTC: 3 delivered, 1 failed</title>" in page.text
    earlier = (hour - timedelta(hours=30)).strftime("%Y-%m-%d %H:00")
    assert f"<title>{earlier} UTC: 2 delivered, 0 failed</title>" in page.text
    assert "5 delivered" in page.text and "1 failed" in page.text
    assert "<script" not in page.text.split('<svg class="chart"', 1)[1].split("</svg>", 1)[0]

    german = await admin.get("/admin/federation", headers={"Accept-Language": "de"})
    assert "Zustellungen pro Stunde, letzte 7 Tage (UTC)" in german.text
    assert "5 zugestellt" in german.text
