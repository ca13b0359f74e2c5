"""Facts about this instance as a whole: usage statistics and the admin-editable description."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, update
from sqlmodel import col, select

from app.context import AppContext
from app.federation.publisher import Publisher
from app.models import (
    Account,
    AuditLogEntry,
    DeliveryJob,
    DomainHealth,
    InstanceSetting,
    JobState,
    Post,
    User,
)
from app.models.base import utcnow
from app.services import events
from app.services.errors import Invalid
from app.services.media import REQUIRE_DESCRIPTIONS_KEY
from app.services.viewer import Viewer


@dataclass(frozen=True)
class UsageStats:
    users_total: int
    users_active_month: int
    users_active_halfyear: int
    local_posts: int


class InstanceService:
    def __init__(self, context: AppContext, viewer: Viewer | None = None) -> None:
        """`viewer` is who asks (None: the server itself or the command line); changing the About
        page is for administrators."""
        self.context = context
        self.viewer = viewer if viewer is not None else Viewer.system()

    async def usage(self) -> UsageStats:
        now = utcnow()

        def active_since(days: int) -> ColumnElement[bool]:
            since = now - timedelta(days=days)
            return or_(col(User.last_login_at) >= since, col(Account.last_post_at) >= since)

        base = (
            select(func.count())
            .select_from(User)
            .join(Account, col(Account.id) == col(User.account_id))
            .where(col(User.disabled_at).is_(None), col(Account.deleted_at).is_(None))
        )
        async with self.context.sessions() as session:
            total = await session.scalar(base)
            month = await session.scalar(base.where(active_since(30)))
            halfyear = await session.scalar(base.where(active_since(180)))
            posts = await session.scalar(
                select(func.count())
                .select_from(Post)
                .where(
                    col(Post.local).is_(True),
                    col(Post.deleted_at).is_(None),
                    col(Post.reblog_of_id).is_(None),
                )
            )
        return UsageStats(int(total or 0), int(month or 0), int(halfyear or 0), int(posts or 0))

    async def setting(self, key: str, default: str = "") -> str:
        async with self.context.sessions() as session:
            row = await session.get(InstanceSetting, key)
        return row.value if row else default

    async def name(self) -> str:
        return await self.setting("name", self.context.settings.instance_name)

    async def description(self) -> str:
        return await self.setting("description", self.context.settings.instance_description)

    # The About page: what admins write about the instance, kept in InstanceSetting rows.

    async def about(self) -> InstanceAbout:
        async with self.context.sessions() as session:
            rows = await session.scalars(
                select(InstanceSetting).where(col(InstanceSetting.key).in_(ABOUT_KEYS))
            )
            values = {row.key: row.value for row in rows.all()}
        settings = self.context.settings
        return InstanceAbout(
            name=values.get("name") or settings.instance_name,
            description=values.get("description", settings.instance_description),
            contact_email=values.get("contact_email", ""),
            contact_account=values.get("contact_account", ""),
            rules=[line for line in values.get("rules", "").splitlines() if line.strip()],
            privacy_policy=values.get("privacy_policy", ""),
            require_media_descriptions=values.get(REQUIRE_DESCRIPTIONS_KEY) == "1",
        )

    async def update_about(self, about: InstanceAbout, *, by_user_id: int | None = None) -> InstanceAbout:
        """Store the About page; raises InstanceSettingsError with a message for the admin on bad input."""
        self.viewer.require_admin()
        name = about.name.strip()
        if not name or len(name) > 100:
            raise InstanceSettingsError("the instance name must have 1 to 100 characters")
        email = about.contact_email.strip()
        if email and ("@" not in email or len(email) > 320 or any(ch.isspace() for ch in email)):
            raise InstanceSettingsError(f"{email!r} is not an e-mail address")
        contact = about.contact_account.strip().removeprefix("@").lower()
        rules = [rule.strip() for rule in about.rules if rule.strip()]
        for label, text, limit in (
            ("description", about.description, 5_000),
            ("privacy policy", about.privacy_policy, 50_000),
            ("rules", "\n".join(rules), 10_000),
        ):
            if len(text) > limit:
                raise InstanceSettingsError(f"the {label} may have at most {limit} characters")
        values = {
            "name": name,
            "description": about.description.strip(),
            "contact_email": email,
            "contact_account": contact,
            "rules": "\n".join(rules),
            "privacy_policy": about.privacy_policy.strip(),
            # Read by app.services.media when a post claims its attachments.
            REQUIRE_DESCRIPTIONS_KEY: "1" if about.require_media_descriptions else "0",
        }
        now = utcnow()
        async with self.context.sessions() as session:
            if contact and not await session.scalar(
                select(Account.id).where(Account.username == contact, col(Account.domain).is_(None))
            ):
                raise InstanceSettingsError(f"there is no local account named {contact!r}")
            for key, value in values.items():
                row = await session.get(InstanceSetting, key)
                if row is None:
                    session.add(InstanceSetting(key=key, value=value, updated_at=now))
                elif row.value != value:
                    row.value = value
                    row.updated_at = now
                    session.add(row)
            session.add(
                AuditLogEntry(
                    user_id=by_user_id, action="instance.update", target="about", data={"name": name}
                )
            )
            # The name and description are on every page and in NodeInfo.
            events.announce(session, [events.PublicContentChanged()])
            await session.commit()
        return await self.about()


ABOUT_KEYS = (
    "name",
    "description",
    "contact_email",
    "contact_account",
    "rules",
    "privacy_policy",
    REQUIRE_DESCRIPTIONS_KEY,
)


class InstanceSettingsError(Invalid):
    """Instance settings that cannot be stored; the message is meant for the administrator."""


@dataclass(frozen=True)
class InstanceAbout:
    name: str
    description: str
    contact_email: str = ""
    # A local user name (without @) people can write to.
    contact_account: str = ""
    rules: list[str] = field(default_factory=list)
    privacy_policy: str = ""
    # Accessibility policy: a post's pictures, videos and audio files must each have a description.
    require_media_descriptions: bool = False


# The admin's view of federation: how full the delivery queue is and which domains are failing.

RECENT_FAILURES = timedelta(days=7)


@dataclass(frozen=True)
class DomainDelivery:
    host: str
    queued: int
    failed_recent: int
    last_status: int | None
    last_error: str | None
    failure_days: int
    unavailable_since: datetime | None
    last_success_at: datetime | None


@dataclass(frozen=True)
class DeliveryOverview:
    queued: int
    # Queued jobs whose time has come (the rest wait for a retry).
    ready: int
    failed_recent: int
    done_recent: int
    domains: list[DomainDelivery]


class DeliveryStatusService:
    """Read the delivery queue for the admin page, and let an admin retry a domain at once."""

    def __init__(self, context: AppContext, viewer: Viewer | None = None) -> None:
        """`viewer` as for InstanceService: only an administrator reads the queue or retries."""
        self.context = context
        self.viewer = viewer if viewer is not None else Viewer.system()

    async def overview(self, *, limit: int = 100) -> DeliveryOverview:
        self.viewer.require_admin()
        now = utcnow()
        since = now - RECENT_FAILURES
        async with self.context.sessions() as session:
            totals = dict(
                (
                    await session.execute(
                        select(DeliveryJob.state, func.count())
                        .where(
                            or_(
                                col(DeliveryJob.state) == JobState.QUEUED,
                                col(DeliveryJob.finished_at) >= since,
                            )
                        )
                        .group_by(col(DeliveryJob.state))
                    )
                ).all()
            )
            ready = await session.scalar(
                select(func.count())
                .select_from(DeliveryJob)
                .where(col(DeliveryJob.state) == JobState.QUEUED, col(DeliveryJob.next_attempt_at) <= now)
            )
            per_host: dict[str, dict[str, int]] = {}
            for host, state, count in (
                await session.execute(
                    select(DeliveryJob.host, DeliveryJob.state, func.count())
                    .where(
                        or_(
                            col(DeliveryJob.state) == JobState.QUEUED,
                            (col(DeliveryJob.state) == JobState.FAILED)
                            & (col(DeliveryJob.finished_at) >= since),
                        )
                    )
                    .group_by(col(DeliveryJob.host), col(DeliveryJob.state))
                )
            ).all():
                per_host.setdefault(host, {})[state] = int(count)
            health = {
                row.host: row
                for row in (
                    await session.scalars(
                        select(DomainHealth).where(
                            or_(
                                col(DomainHealth.failure_days) > 0,
                                col(DomainHealth.unavailable_since).is_not(None),
                            )
                        )
                    )
                ).all()
            }
            hosts = set(per_host) | set(health)
            last_errors: dict[str, tuple[int | None, str | None]] = {}
            if hosts:
                for host, status, error in (
                    await session.execute(
                        select(DeliveryJob.host, DeliveryJob.last_status, DeliveryJob.last_error)
                        .where(col(DeliveryJob.host).in_(hosts), col(DeliveryJob.last_error).is_not(None))
                        .order_by(col(DeliveryJob.id).desc())
                        .limit(500)
                    )
                ).all():
                    last_errors.setdefault(host, (status, error))
        domains = []
        for host in hosts:
            counts = per_host.get(host, {})
            row = health.get(host)
            status, error = last_errors.get(host, (None, None))
            domains.append(
                DomainDelivery(
                    host=host,
                    queued=counts.get(JobState.QUEUED, 0),
                    failed_recent=counts.get(JobState.FAILED, 0),
                    last_status=status,
                    last_error=error,
                    failure_days=row.failure_days if row else 0,
                    unavailable_since=row.unavailable_since if row else None,
                    last_success_at=row.last_success_at if row else None,
                )
            )
        domains.sort(
            key=lambda item: (
                item.unavailable_since is None,
                -item.failure_days,
                -item.failed_recent,
                item.host,
            )
        )
        return DeliveryOverview(
            queued=int(totals.get(JobState.QUEUED, 0)),
            ready=int(ready or 0),
            failed_recent=int(totals.get(JobState.FAILED, 0)),
            done_recent=int(totals.get(JobState.DONE, 0)),
            domains=domains[:limit],
        )

    async def retry_domain(self, host: str, *, by_user_id: int | None = None) -> int:
        """Make `host` available again and attempt its waiting deliveries now; returns how many.

        Deliveries that failed in the last week without a permanent refusal (a 4xx other than 401,
        408 and 429) are queued again too: they were dropped while the domain was unavailable or
        ran out of attempts.
        """
        self.viewer.require_admin()
        now = utcnow()
        retryable = or_(
            col(DeliveryJob.last_status).is_(None),
            col(DeliveryJob.last_status) >= 500,
            col(DeliveryJob.last_status).in_([401, 408, 429]),
        )
        async with self.context.sessions() as session:
            queued = await session.execute(
                update(DeliveryJob)
                .where(col(DeliveryJob.host) == host, col(DeliveryJob.state) == JobState.QUEUED)
                .values(next_attempt_at=now)
            )
            requeued = await session.execute(
                update(DeliveryJob)
                .where(
                    col(DeliveryJob.host) == host,
                    col(DeliveryJob.state) == JobState.FAILED,
                    col(DeliveryJob.finished_at) >= now - RECENT_FAILURES,
                    retryable,
                )
                .values(state=JobState.QUEUED, next_attempt_at=now, finished_at=None, locked_until=None)
            )
            await session.execute(
                update(DomainHealth)
                .where(col(DomainHealth.host) == host)
                .values(failure_days=0, last_failure_day=None, unavailable_since=None)
            )
            session.add(AuditLogEntry(user_id=by_user_id, action="federation.retry", target=host, data={}))
            Publisher(self.context).wake_delivery(session)
            await session.commit()
        return int(getattr(queued, "rowcount", 0) or 0) + int(getattr(requeued, "rowcount", 0) or 0)
