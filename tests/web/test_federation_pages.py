"""Admin → Federation's charts of the week and the page of each domain, read from real queue rows."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from app.models import Account, DeliveryJob, DomainHealth, InboxItem, JobState, OutboxActivity, Role
from app.models.base import utcnow
from app.services.delivery_history import DeliveryHistoryService
from tests.lab import Instance, Lab
from tests.web.helpers import logged_in, make_user


async def _activity(instance: Instance, username: str) -> int:
    async with instance.context.sessions() as session:
        author = (await session.scalars(select(Account).where(Account.username == username))).one()
        activity = OutboxActivity(
            uri=f"http://{instance.domain}/activity/1",
            activity_type="Create",
            account_id=author.id,
            payload={},
        )
        session.add(activity)
        await session.commit()
        return activity.id


async def test_charts_rank_failing_slow_and_busy_domains_and_link_their_pages(lab: Lab) -> None:
    instance = await lab.instance("a.test", embedded_worker=False)
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    activity = await _activity(instance, "boss")
    now = utcnow()
    async with instance.context.sessions() as session:
        jobs = []
        # fast.example took 2 s per delivery, slow.example 10 minutes (a retry), both three times.
        for host, waited in (("fast.example", timedelta(seconds=2)), ("slow.example", timedelta(minutes=10))):
            for number in range(3):
                jobs.append(
                    DeliveryJob(
                        activity_id=activity,
                        inbox_url=f"https://{host}/users/{number}/inbox",
                        host=host,
                        state=JobState.DONE,
                        created_at=now - timedelta(hours=1) - waited,
                        finished_at=now - timedelta(hours=1),
                    )
                )
        # broken.example failed twice; once.example once.
        for host, count in (("broken.example", 2), ("once.example", 1)):
            for number in range(count):
                jobs.append(
                    DeliveryJob(
                        activity_id=activity,
                        inbox_url=f"https://{host}/inbox/{number}",
                        host=host,
                        state=JobState.FAILED,
                        last_status=410,
                        last_error="410 Gone",
                        finished_at=now,
                    )
                )
        session.add_all(jobs)
        for number in range(4):
            session.add(
                InboxItem(
                    activity_uri=f"https://chatty.example/activities/{number}",
                    signer_uri="https://chatty.example/users/bob#main-key",
                    state=JobState.DONE,
                )
            )
        session.add(
            InboxItem(
                activity_uri="https://quiet.example:8443/activities/1",
                signer_uri="https://quiet.example:8443/users/eve",
                state=JobState.DONE,
            )
        )
        await session.commit()

    charts = DeliveryHistoryService(instance.context)
    assert [(figure.host, figure.value) for figure in await charts.most_failing()] == [
        ("broken.example", 2.0),
        ("once.example", 1.0),
    ]
    slowest = await charts.slowest()
    assert [figure.host for figure in slowest] == ["slow.example", "fast.example"]
    assert 590 <= slowest[0].value <= 610 and 1 <= slowest[1].value <= 3
    assert [(figure.host, figure.value) for figure in await charts.incoming_by_domain()] == [
        ("chatty.example", 4.0),
        ("quiet.example:8443", 1.0),
    ]

    page = await admin.get("/admin/federation")
    assert page.status_code == 200
    for title in (
        "Most failed deliveries, last 7 days",
        "Slowest to receive our posts, last 7 days",
        "Most activities received, last 7 days",
        "Deliveries waiting, last 7 days (UTC)",
    ):
        assert f'aria-label="{title}"' in page.text
    assert "<title>broken.example: 2 failed</title>" in page.text
    assert "<title>slow.example: 10 min</title>" in page.text
    assert "<title>chatty.example: 4 received</title>" in page.text
    assert 'href="/admin/federation/domains/chatty.example"' in page.text
    german = await admin.get("/admin/federation", headers={"Accept-Language": "de"})
    assert "Meiste fehlgeschlagene Zustellungen, letzte 7 Tage" in german.text


async def test_queue_depth_counts_what_waited_at_the_end_of_each_hour(lab: Lab) -> None:
    instance = await lab.instance("a.test", embedded_worker=False)
    await make_user(instance, "boss", role=Role.ADMIN)
    activity = await _activity(instance, "boss")
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    async with instance.context.sessions() as session:
        # Five queued three hours ago: two finished two hours ago, three still wait.
        for number in range(5):
            finished = number < 2
            session.add(
                DeliveryJob(
                    activity_id=activity,
                    inbox_url=f"https://q{number}.example/inbox",
                    host=f"q{number}.example",
                    state=JobState.DONE if finished else JobState.QUEUED,
                    created_at=hour - timedelta(hours=3) + timedelta(minutes=10),
                    finished_at=hour - timedelta(hours=2) + timedelta(minutes=10) if finished else None,
                )
            )
        await session.commit()
    depth = await DeliveryHistoryService(instance.context).queue_depth_per_hour()
    # Slots are hour starts; each value is the depth at the end of that hour.
    assert depth.values[-5:] == [0, 5, 3, 3, 3]


async def test_domain_page_shows_its_history_errors_and_retries_it(lab: Lab) -> None:
    instance = await lab.instance("a.test", embedded_worker=False)
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    activity = await _activity(instance, "boss")
    now = utcnow()
    async with instance.context.sessions() as session:
        session.add_all(
            [
                DeliveryJob(
                    activity_id=activity,
                    inbox_url="https://down.example/inbox",
                    host="down.example",
                    next_attempt_at=now + timedelta(hours=2),
                    attempts=4,
                    last_status=502,
                    last_error="502 Bad Gateway",
                ),
                DeliveryJob(
                    activity_id=activity,
                    inbox_url="https://down.example/users/a/inbox",
                    host="down.example",
                    state=JobState.DONE,
                    finished_at=now,
                ),
                InboxItem(
                    activity_uri="https://down.example/like/1",
                    signer_uri="https://down.example/users/a",
                    state=JobState.DONE,
                ),
                # Another domain whose name contains this one's: not counted here.
                InboxItem(
                    activity_uri="https://down.example.org/like/1",
                    signer_uri="https://down.example.org/users/a",
                    state=JobState.DONE,
                ),
                DomainHealth(host="down.example", failure_days=2),
            ]
        )
        await session.commit()

    page = await admin.get("/admin/federation/domains/down.example")
    assert page.status_code == 200
    assert "down.example" in page.text and "Failing (2 days)" in page.text
    assert "HTTP 502 502 Bad Gateway" in page.text and "https://down.example/inbox" in page.text
    assert 'aria-label="Deliveries per hour to down.example, last 7 days (UTC)"' in page.text
    assert "1 delivered" in page.text
    assert "UTC: 1 received</title>" in page.text

    retried = await admin.post("/admin/federation/retry", {"host": "down.example", "back": "domain"})
    assert retried.status_code == 303
    assert retried.headers["location"] == "/admin/federation/domains/down.example?notice=retried"
    async with instance.context.sessions() as session:
        waiting = (
            await session.scalars(select(DeliveryJob).where(DeliveryJob.state == JobState.QUEUED))
        ).one()
    assert waiting.next_attempt_at <= utcnow()

    # A host with a port, and an IPv6 literal, have pages too; text that names no host is a 400.
    assert (await admin.get("/admin/federation/domains/localhost:8000")).status_code == 200
    assert (await admin.get("/admin/federation/domains/[::1]:8000")).status_code == 200
    bad = await admin.get("/admin/federation/domains/not a host")
    assert bad.status_code == 400
    assert (await admin.get("/admin/federation/domains/x..example")).status_code == 400
    # Staff who are not admins see none of it.
    staff = await logged_in(instance, "carol", role=Role.STAFF)
    assert (await staff.get("/admin/federation/domains/down.example")).status_code == 403
