"""Instance-wide moderation decisions. The one place that says whether a remote host is blocked.

A DomainBlock covers its domain on every port and every subdomain: blocking `example.org` also
blocks `media.example.org:8443`. The inbox asks before fetching anything from the host.
"""

from __future__ import annotations

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
