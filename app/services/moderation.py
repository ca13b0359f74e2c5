"""Instance-wide moderation decisions. The one place that says whether a remote host is blocked.

A DomainBlock covers its domain on every port and every subdomain: blocking `example.org` also
blocks `media.example.org:8443`. The inbox asks before fetching anything from the host.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.models import BlockSeverity, DomainBlock


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
class SuspendedDomains:
    """Every suspended domain at one moment: what a busy inbox consults instead of asking per request."""

    domains: frozenset[str]

    def covering(self, host: str) -> str | None:
        return next((domain for domain in covering_domains(host) if domain in self.domains), None)


async def suspended_domains(session: AsyncSession) -> SuspendedDomains:
    rows = await session.scalars(
        select(DomainBlock.domain).where(col(DomainBlock.severity) == BlockSeverity.SUSPEND)
    )
    return SuspendedDomains(frozenset(bare_host(domain) for domain in rows.all()))


class SuspendedDomainsView:
    """The suspended domains as read at most `ttl` seconds ago: for the inbox and its worker, which
    would otherwise ask the database for every activity. A new block applies within `ttl`."""

    def __init__(self, context: AppContext, ttl: float = 5.0) -> None:
        self.context = context
        self.ttl = ttl
        self._snapshot: asyncio.Future[SuspendedDomains] | None = None
        self._expires = 0.0

    async def blocking(self, host: str) -> str | None:
        snapshot = self._snapshot
        if (
            snapshot is None
            or time.monotonic() >= self._expires
            or (snapshot.done() and snapshot.exception())
        ):
            # One read however many requests find the snapshot stale at the same moment.
            snapshot = self._snapshot = asyncio.ensure_future(self._read())
            self._expires = time.monotonic() + self.ttl
        if snapshot.done():
            return snapshot.result().covering(host)
        return (await asyncio.shield(snapshot)).covering(host)

    async def _read(self) -> SuspendedDomains:
        async with self.context.sessions() as session:
            return await suspended_domains(session)


async def suspending_block(session: AsyncSession, host: str) -> str | None:
    """The blocked domain that suspends federation with `host`, or None when it may federate."""
    candidates = covering_domains(host)
    if not candidates:
        return None
    found = await session.scalar(
        select(DomainBlock.domain)
        .where(col(DomainBlock.domain).in_(candidates), col(DomainBlock.severity) == BlockSeverity.SUSPEND)
        .limit(1)
    )
    return found


async def is_domain_suspended(context: AppContext, host: str) -> bool:
    async with context.sessions() as session:
        return await suspending_block(session, host) is not None
