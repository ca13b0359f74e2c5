"""Instance-wide moderation decisions: the one place that says whether a remote host is blocked,
silenced or (in limited federation mode) not allowed.

A DomainBlock covers its domain on every port and every subdomain: blocking `example.org` also
blocks `media.example.org:8443`. When blocks overlap, the most specific domain decides, as on
Mastodon (`example.org` suspended, `news.example.org` only silenced).

The inbox, the delivery worker, the fetcher, following and timelines all ask the same
`DomainPolicy`; the services that change blocks (app/services/domain_blocks.py) invalidate it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.config import Settings, host_without_port
from app.db import SessionFactory
from app.models import Account, BlockSeverity, DomainAllow, DomainBlock
from app.services.read_cache import ReadCache

if TYPE_CHECKING:
    from app.context import AppContext


def bare_host(host: str) -> str:
    """`Example.org:8443` → `example.org`; `[::1]:80` → `::1`. Trailing dots go too (`org.` is `org`)."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host.strip("[]")
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def covering_domains(host: str) -> list[str]:
    """The host and each parent domain, any of which a block may name: a.b.org → a.b.org, b.org, org."""
    name = bare_host(host)
    if not name:
        return []
    if ":" in name or name.replace(".", "").isdigit():
        return [name]  # an IP address has no parent domains
    labels = name.split(".")
    return [".".join(labels[index:]) for index in range(len(labels))]


@dataclass(frozen=True)
class BlockRule:
    domain: str
    severity: str
    reject_media: bool
    reject_reports: bool
    # Deliveries queued up to this moment (the Undo/Reject that sever follows) still go out.
    since: datetime

    @property
    def suspends(self) -> bool:
        return self.severity == BlockSeverity.SUSPEND


@dataclass(frozen=True)
class DomainPolicy:
    """Every domain block and allowed domain at one moment."""

    blocks: Mapping[str, BlockRule]
    # None unless the instance runs in limited federation mode.
    allowed: frozenset[str] | None
    # Our own hosts: never blocked, always allowed.
    local: frozenset[str]

    def rule_for(self, host: str) -> BlockRule | None:
        """The most specific block covering `host` (covering_domains lists the host first)."""
        return next((self.blocks[name] for name in covering_domains(host) if name in self.blocks), None)

    def suspending(self, host: str) -> str | None:
        """Why `host` may not federate at all (the blocked domain, or the host when not allowed), else None."""
        name = bare_host(host)
        if not name or name in self.local:
            return None
        rule = self.rule_for(name)
        if rule is not None and rule.suspends:
            return rule.domain
        if self.allowed is not None and not any(domain in self.allowed for domain in covering_domains(name)):
            return name
        return None

    def silencing(self, host: str) -> str | None:
        rule = self.rule_for(host)
        return rule.domain if rule is not None and rule.severity == BlockSeverity.SILENCE else None

    @property
    def silenced_domains(self) -> list[str]:
        return sorted(name for name, rule in self.blocks.items() if rule.severity == BlockSeverity.SILENCE)

    def rejects_media(self, host: str) -> bool:
        """Whether pages must not embed files from `host` (Mastodon's reject_media; Herold stores no
        remote files, it links them, so this is the whole of it). A suspended domain's are gone anyway."""
        rule = self.rule_for(host)
        return rule is not None and (rule.reject_media or rule.suspends)

    def embeds_media(self, owner_domain: str | None, url: str | None) -> bool:
        """Whether a page may load `url` (an avatar, header or attachment of an account on
        `owner_domain`, None for a local one): neither the account's server nor the host serving
        the file may be a domain whose media is rejected."""
        if not url:
            return False
        hosts = [owner_domain] if owner_domain else []
        try:
            served_from = urlsplit(url).hostname if "//" in url else None
        except ValueError:  # `https://[x/a.png`: a remote server's garbage, shown nowhere
            return False
        if served_from:
            hosts.append(served_from)
        return not any(self.rejects_media(host) for host in hosts)

    def rejects_reports(self, host: str) -> bool:
        rule = self.rule_for(host)
        return rule is not None and (rule.reject_reports or rule.suspends)

    def refuses_delivery(self, host: str, queued_at: datetime) -> str | None:
        """Why a delivery queued at `queued_at` must not go to `host`, else None.

        Jobs queued before a suspension took effect are the Undo/Reject written with it (the
        block fails every other waiting job), so those still leave: the peer learns of the cut.
        """
        if not self.blocks and self.allowed is None:
            return None  # nothing to refuse (most instances, most of the time): no host to parse
        blocked = self.suspending(host)
        if blocked is None:
            return None
        rule = self.rule_for(host)
        if rule is not None and rule.suspends and queued_at <= rule.since:
            return None
        if rule is None or not rule.suspends:
            return f"{bare_host(host)} is not on the allowlist (limited federation)"
        return f"{rule.domain} is suspended by a domain block"


def on_domain(column: Any, domain: str) -> ColumnElement[bool]:
    """SQL: a host column (maybe with a port) names `domain` or one of its subdomains."""
    escaped = domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(
        column == domain,
        column.like(f"%.{escaped}", escape="\\"),
        column.like(f"{escaped}:%", escape="\\"),
        column.like(f"%.{escaped}:%", escape="\\"),
    )


def local_hosts(settings: Settings) -> frozenset[str]:
    return frozenset(
        bare_host(host_without_port(domain)) for domain in (settings.local_domain, settings.web_domain)
    )


async def read_policy(session: AsyncSession, settings: Settings) -> DomainPolicy:
    blocks = await session.scalars(select(DomainBlock))
    rules = {
        bare_host(row.domain): BlockRule(
            bare_host(row.domain), row.severity, row.reject_media, row.reject_reports, row.created_at
        )
        for row in blocks.all()
    }
    allowed = None
    if settings.limited_federation:
        allowed = frozenset(
            bare_host(domain) for domain in (await session.scalars(select(DomainAllow.domain))).all()
        )
    return DomainPolicy(rules, allowed, local_hosts(settings))


_POLICY = "policy"


class DomainPolicyView:
    """The policy as read at most `ttl` seconds ago, shared by everything in one instance.

    Changes made in this process invalidate it at once; a block made by another process (the
    CLI, a second worker) applies within `ttl`.
    """

    def __init__(self, sessions: SessionFactory, settings: Settings, ttl: float = 5.0) -> None:
        self.sessions = sessions
        self.settings = settings
        self._cache = ReadCache(ttl=ttl, limit=1)

    def invalidate(self) -> None:
        self._cache.forget(_POLICY)

    async def current(self) -> DomainPolicy:
        # One read however many requests find the policy stale at the same moment.
        return await self._cache.get(_POLICY, self._read)

    async def suspending(self, host: str) -> str | None:
        return (await self.current()).suspending(host)

    async def silencing(self, host: str) -> str | None:
        return (await self.current()).silencing(host)

    async def _read(self) -> DomainPolicy:
        async with self.sessions() as session:
            return await read_policy(session, self.settings)


async def is_silenced(context: AppContext, account: Account) -> bool:
    """Whether `account` is on a silenced domain (a local account never is)."""
    return account.domain is not None and await context.domain_policy.silencing(account.domain) is not None
