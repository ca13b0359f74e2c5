"""Blocking and allowing whole domains: what the admin page, the CLI and CSV import call.

The decision itself (is this host blocked?) is app/services/moderation.py; this module changes
the rows it reads and carries out what a suspension means for what is already stored:
follows in both directions are severed (the peer is told with Undo or Reject, queued before the
cut takes effect), waiting deliveries are dropped and every cached account from the domain is
purged with its posts.
"""

from __future__ import annotations

import csv
import io
import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.activitypub.addresses import ascii_hostname, hostname_problem
from app.activitypub.parsers import InvalidObject, authority
from app.context import AppContext
from app.federation.publisher import Publisher
from app.models import (
    Account,
    AuditLogEntry,
    BlockSeverity,
    DeliveryJob,
    DomainAllow,
    DomainBlock,
    Follow,
    JobState,
    Post,
    Role,
    User,
)
from app.models.base import utcnow
from app.services import events
from app.services.errors import Forbidden, Invalid
from app.services.jobs import MEDIA_CLEAR_DOMAIN, queue_job
from app.services.media import stored_keys_of_posts
from app.services.moderation import covering_domains, local_hosts, on_domain
from app.services.viewer import Viewer

MAX_COMMENT_LENGTH = 1000
MAX_IMPORT_BYTES = 1_000_000
CSV_FIELDS = ["#domain", "#severity", "#reject_media", "#reject_reports", "#public_comment", "#obfuscate"]


class DomainBlockError(Invalid):
    """A domain or block that cannot be used; the message is shown to the admin as is."""


@dataclass(frozen=True)
class SuspensionEffects:
    follows_severed: int = 0
    accounts_purged: int = 0
    deliveries_dropped: int = 0
    # Store keys of the purged accounts' cached media and pictures, deleted after the commit.
    cached_files: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class ImportResult:
    imported: int
    # One line per row left out, saying which and why.
    skipped: list[str]


def normalize_domain(value: str) -> str:
    """The name a block (or allow) is stored and matched under: `value` in lower case, with an
    internationalised name in its IDNA form (`Bücher.example` → `xn--bcher-kva.example`).

    Nothing else is changed on the admin's behalf: a web address, a port, a `*.` wildcard or
    anything that is no host name is refused with a message that says what was wrong and what to
    enter instead, so the block that is stored is the block the admin meant.
    """
    typed = value.strip()
    shown = repr(typed[:80])
    if not typed:
        raise DomainBlockError("enter a domain, such as example.social")
    if "://" in typed or typed.startswith("//"):
        host = _host_in(typed)
        hint = f" ({host})" if host else ""
        raise DomainBlockError(f"{shown} is a web address: enter just its domain{hint}")
    if "/" in typed:
        raise DomainBlockError(f"{shown} has a path: enter just the domain ({typed.split('/', 1)[0][:80]!r})")
    if any(char in typed for char in "@?#\\\"'<>"):
        raise DomainBlockError(
            f"{shown} is not a domain: enter just a host name, such as example.social, without a user or punctuation"
        )
    if any(char.isspace() or not char.isprintable() for char in typed):
        raise DomainBlockError(f"{shown} is not a domain: it contains a space or an invisible character")
    literal = _ip_literal(typed)
    if literal is not None:
        return literal
    if typed.startswith("*."):
        raise DomainBlockError(
            f"{shown}: a block already covers every subdomain, enter just {typed[2:][:80]!r}"
        )
    if ":" in typed:
        raise DomainBlockError(
            f"{shown}: a block covers every port, enter just {typed.rsplit(':', 1)[0][:80]!r}"
        )
    if typed.endswith("."):
        raise DomainBlockError(f"{shown}: enter the domain without the final dot")
    # The one host-name rule (app.activitypub.addresses), and the same encoding that hosts taken
    # from actors, keyIds and inboxes get: a block matches the name as Herold meets it on the wire.
    problem = hostname_problem(typed)
    if problem is not None:
        raise DomainBlockError(f"{shown} is not a domain: it {problem}")
    name = ascii_hostname(typed)
    if name.rsplit(".", 1)[-1].isdigit():
        raise DomainBlockError(f"{shown} is neither a domain nor an IP address")
    return name


def _ip_literal(typed: str) -> str | None:
    candidate = typed[1:-1] if typed.startswith("[") and typed.endswith("]") else typed
    try:
        return ipaddress.ip_address(candidate).compressed
    except ValueError:
        return None


def _host_in(url: str) -> str | None:
    """The host of a web address an admin pasted, to suggest it (it is not used on its own)."""
    try:
        host = urlsplit(url if "://" in url else f"http:{url}").hostname
    except ValueError:
        return None
    return host[:80] if host else None


def domain_label(name: str) -> str:
    """A stored name as people read it: `bücher.example (xn--bcher-kva.example)`, or the name itself."""
    shown = unicode_domain(name)
    return f"{shown} ({name})" if shown else name


def unicode_domain(name: str) -> str | None:
    """The Unicode form of a stored IDNA name (`xn--bcher-kva.example` → `bücher.example`), shown next to
    it; None when the name is plain ASCII (or cannot be decoded)."""
    if "xn--" not in name:
        return None
    try:
        decoded = name.encode("ascii").decode("idna")
    except UnicodeError:
        return None
    return decoded if decoded != name else None


def _stored_name(value: str) -> str:
    """The name to remove: as normalize_domain gives it, or, for a row an older version stored
    without that check, exactly as it is listed (so it can still be lifted)."""
    try:
        return normalize_domain(value)
    except DomainBlockError:
        return value.strip().lower()


def _severity(value: str) -> BlockSeverity:
    try:
        return BlockSeverity(value.strip().lower())
    except ValueError:
        raise DomainBlockError(f"severity must be silence or suspend, not {value[:40]!r}") from None


def _comment(value: str | None) -> str | None:
    value = (value or "").strip()
    return value[:MAX_COMMENT_LENGTH] or None


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


class DomainBlockService:
    """Reading the blocks is for everyone (they are public at /about); changing them is for
    administrators: the viewer (no viewer: the command line) and `by`, who is written to the
    audit log, must be one."""

    def __init__(self, context: AppContext, viewer: Viewer | None = None) -> None:
        self.context = context
        self.viewer = viewer if viewer is not None else Viewer.system()
        self.publisher = Publisher(context)

    def _acting_admin(self, by: User | None) -> User | None:
        """Who makes the change, for the audit log; Forbidden unless an administrator."""
        self.viewer.require_admin()
        if by is not None and by.role != Role.ADMIN:
            raise Forbidden("only administrators may do this")
        return by if by is not None else self.viewer.user

    async def blocks(self) -> list[DomainBlock]:
        async with self.context.sessions() as session:
            return list((await session.scalars(select(DomainBlock).order_by(col(DomainBlock.domain)))).all())

    async def block(
        self,
        domain: str,
        *,
        severity: str = BlockSeverity.SUSPEND,
        reject_media: bool = False,
        reject_reports: bool = False,
        public_comment: str | None = None,
        private_comment: str | None = None,
        by: User | None = None,
    ) -> tuple[DomainBlock, SuspensionEffects]:
        """Create or change the block of `domain`; a new suspension severs and purges at once."""
        by = self._acting_admin(by)
        name = normalize_domain(domain)
        level = _severity(severity)
        if name in local_hosts(self.context.settings):
            raise DomainBlockError("this server cannot block itself")
        effects = SuspensionEffects()
        async with self.context.sessions() as session:
            row = await session.scalar(select(DomainBlock).where(col(DomainBlock.domain) == name))
            newly_suspended = level == BlockSeverity.SUSPEND and (row is None or row.severity != level)
            # Copies of its media made so far go (Mastodon's ClearDomainMediaService), in the worker.
            rejected_before = row is not None and (row.reject_media or row.severity == BlockSeverity.SUSPEND)
            clears_media = (reject_media or level == BlockSeverity.SUSPEND) and not rejected_before
            created = row is None
            if row is None:
                row = DomainBlock(domain=name)
            if newly_suspended:
                effects = await self._sever_and_purge(session, name)
                # Written after the severing activities were queued: those still go out, nothing later does.
                row.created_at = utcnow()
            row.severity = level
            row.reject_media = reject_media
            row.reject_reports = reject_reports
            row.public_comment = _comment(public_comment)
            row.private_comment = _comment(private_comment)
            session.add(row)
            self._audit(
                session,
                by,
                "domain_block.create" if created else "domain_block.update",
                name,
                {
                    "severity": str(level),
                    "reject_media": reject_media,
                    "reject_reports": reject_reports,
                    "follows_severed": effects.follows_severed,
                    "accounts_purged": effects.accounts_purged,
                },
            )
            if clears_media:
                queue_job(self.context, session, MEDIA_CLEAR_DOMAIN, {"domain": name})
            events.announce(session, [events.PublicContentChanged()])
            await session.commit()
            await session.refresh(row)
        self.context.domain_policy.invalidate()
        # The purged accounts' cached files (their rows are gone with them).
        await self.context.media.delete(*effects.cached_files)
        return row, effects

    async def unblock(self, domain: str, *, by: User | None = None) -> bool:
        """Lift the block; new activity flows again (what was purged stays gone). False if there was none."""
        by = self._acting_admin(by)
        name = _stored_name(domain)
        async with self.context.sessions() as session:
            result = await session.execute(delete(DomainBlock).where(col(DomainBlock.domain) == name))
            if not result.rowcount:  # type: ignore[attr-defined]
                return False
            self._audit(session, by, "domain_block.delete", name, {})
            events.announce(session, [events.PublicContentChanged()])
            await session.commit()
        self.context.domain_policy.invalidate()
        return True

    # Limited federation --------------------------------------------------------------------

    async def allowed(self) -> list[DomainAllow]:
        async with self.context.sessions() as session:
            return list((await session.scalars(select(DomainAllow).order_by(col(DomainAllow.domain)))).all())

    async def allow(self, domain: str, *, by: User | None = None) -> bool:
        by = self._acting_admin(by)
        name = normalize_domain(domain)
        async with self.context.sessions() as session:
            if await session.scalar(select(DomainAllow.id).where(col(DomainAllow.domain) == name)):
                return False
            session.add(DomainAllow(domain=name))
            self._audit(session, by, "domain_allow.create", name, {})
            events.announce(session, [events.PublicContentChanged()])
            await session.commit()
        self.context.domain_policy.invalidate()
        return True

    async def disallow(self, domain: str, *, by: User | None = None) -> bool:
        by = self._acting_admin(by)
        name = _stored_name(domain)
        async with self.context.sessions() as session:
            result = await session.execute(delete(DomainAllow).where(col(DomainAllow.domain) == name))
            if not result.rowcount:  # type: ignore[attr-defined]
                return False
            self._audit(session, by, "domain_allow.delete", name, {})
            events.announce(session, [events.PublicContentChanged()])
            await session.commit()
        self.context.domain_policy.invalidate()
        return True

    # Mastodon's CSV ------------------------------------------------------------------------

    async def export_csv(self) -> str:
        """The blocks in the CSV Mastodon's admin exports and imports."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for row in await self.blocks():
            writer.writerow(
                [
                    row.domain,
                    row.severity,
                    str(row.reject_media).lower(),
                    str(row.reject_reports).lower(),
                    row.public_comment or "",
                    "false",
                ]
            )
        return out.getvalue()

    async def import_csv(self, text: str, *, by: User | None = None) -> ImportResult:
        """Mastodon's export (with or without `#` in the header), or a bare list of domains."""
        by = self._acting_admin(by)
        lines = text.lstrip("\ufeff").splitlines()
        if not lines:
            return ImportResult(0, [])
        first = [cell.strip().lstrip("#").lower() for cell in next(csv.reader([lines[0]]))]
        if "domain" in first:
            reader: Any = csv.DictReader(io.StringIO("\n".join(lines[1:])), fieldnames=first)
        else:
            reader = ({"domain": cells[0] if cells else ""} for cells in csv.reader(io.StringIO(text)))
        imported, skipped = 0, []
        for record in reader:
            domain = (record.get("domain") or "").strip()
            if not domain:
                continue
            severity = (record.get("severity") or "suspend").strip().lower()
            if severity == "noop":
                # Mastodon's "none": only media or reports rejected; Herold has no such level.
                skipped.append(f"{domain[:80]}: Mastodon's severity noop has no equivalent here")
                continue
            try:
                await self.block(
                    domain,
                    severity=severity,
                    reject_media=_flag(record.get("reject_media")),
                    reject_reports=_flag(record.get("reject_reports")),
                    public_comment=record.get("public_comment") or record.get("comment"),
                    by=by,
                )
            except DomainBlockError as error:
                skipped.append(str(error))
                continue
            imported += 1
        return ImportResult(imported, skipped)

    # What a suspension does to what is stored ------------------------------------------------

    async def _sever_and_purge(self, session: AsyncSession, domain: str) -> SuspensionEffects:
        # Dropped first: what was waiting must not go; the Undo/Reject queued below must.
        dropped = await self._drop_waiting_deliveries(session, domain)
        accounts = await self._accounts_on(session, domain)
        by_id = {account.id: account for account in accounts}
        severed = 0
        if by_id:
            follows = (
                await session.scalars(
                    select(Follow).where(
                        col(Follow.follower_id).in_(by_id) | col(Follow.followee_id).in_(by_id)
                    )
                )
            ).all()
            local_ids = {follow.follower_id for follow in follows} | {
                follow.followee_id for follow in follows
            }
            local = {
                account.id: account
                for account in (
                    await session.scalars(
                        select(Account).where(col(Account.id).in_(local_ids), col(Account.domain).is_(None))
                    )
                ).all()
            }
            for follow in follows:
                if follow.followee_id in by_id and follow.follower_id in local:
                    follower, followee = local[follow.follower_id], by_id[follow.followee_id]
                    await self.publisher.unfollowed(session, follower, followee, follow)
                    severed += 1
                elif follow.follower_id in by_id and follow.followee_id in local:
                    followee, follower = local[follow.followee_id], by_id[follow.follower_id]
                    await self.publisher.follow_answered(session, "Reject", followee, follower, follow.uri)
                    severed += 1
        if by_id:
            # Posts, follows, notifications, timeline entries and favourites go with them (ON DELETE CASCADE);
            # reports about them stay for the admins, naming them by the uri and handle they keep.
            await events.announce_deleted_posts(session, col(Post.account_id).in_(by_id))
            cached_files: list[str | None] = list(
                await stored_keys_of_posts(session, col(Post.account_id).in_(by_id))
            )
            store = self.context.media
            for account in by_id.values():
                cached_files += [
                    store.key_of_url(url) for url in (account.avatar_cached_url, account.header_cached_url)
                ]
            await session.execute(delete(Account).where(col(Account.id).in_(by_id)))
            return SuspensionEffects(severed, len(by_id), dropped, tuple(cached_files))
        return SuspensionEffects(severed, len(by_id), dropped)

    async def _accounts_on(self, session: AsyncSession, domain: str) -> list[Account]:
        """Remote accounts whose handle domain or id host is `domain` or under it."""
        candidates = await session.scalars(
            select(Account).where(
                col(Account.domain).is_not(None),
                col(Account.domain).contains(domain, autoescape=True)
                | col(Account.uri).contains(domain, autoescape=True),
            )
        )
        return [
            account
            for account in candidates.all()
            if domain in covering_domains(account.domain or "")
            or domain in covering_domains(_host_of(account.uri))
        ]

    async def _drop_waiting_deliveries(self, session: AsyncSession, domain: str) -> int:
        result = await session.execute(
            update(DeliveryJob)
            .where(col(DeliveryJob.state) == JobState.QUEUED, on_domain(col(DeliveryJob.host), domain))
            .values(
                state=JobState.FAILED,
                finished_at=utcnow(),
                last_error=f"{domain} is suspended by a domain block",
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    @staticmethod
    def _audit(
        session: AsyncSession, by: User | None, action: str, target: str, data: dict[str, Any]
    ) -> None:
        session.add(AuditLogEntry(user_id=by.id if by else None, action=action, target=target, data=data))


def _host_of(uri: str) -> str:
    try:
        return authority(uri)
    except InvalidObject:
        return ""
