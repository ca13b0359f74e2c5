"""The audit log in words: "alice invited bob", "alice blocked threads.net (suspended)".

The services write each administrative action as a code, a target and a little data (see
AuditLogEntry); this module turns those rows into one translated sentence each, with the accounts
and domains linked. Every code the services write has a sentence in SENTENCES (a test reads the
source to keep it so); a code this module does not know still shows, as the code itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape
from sqlmodel import col, select

from app.context import AppContext
from app.i18n import N_
from app.models import Account, AuditLogEntry, Report, User
from app.web.templating import http_url

# Action code (with a variant chosen from its data, see _variant) → the sentence shown.
SENTENCES: dict[str, str] = {
    "staff.create": N_("%(actor)s invited %(target)s"),
    "staff.create/admin": N_("%(actor)s invited %(target)s as an administrator"),
    "staff.create/organization": N_("%(actor)s created the organisation account %(target)s"),
    "staff.role/admin": N_("%(actor)s made %(target)s an administrator"),
    "staff.role/staff": N_("%(actor)s made %(target)s a staff member (no longer an administrator)"),
    "staff.disable": N_("%(actor)s disabled the login of %(target)s"),
    "staff.enable": N_("%(actor)s enabled the login of %(target)s again"),
    "delegate.grant": N_("%(actor)s allowed %(member)s to post as %(target)s"),
    "delegate.revoke": N_("%(actor)s withdrew the right of %(member)s to post as %(target)s"),
    "report.create": N_("%(actor)s reported %(target)s"),
    "report.create/forwarded": N_("%(actor)s reported %(target)s and forwarded the report to its server"),
    "report.resolve": N_("%(actor)s resolved the report about %(target)s"),
    "instance.update": N_("%(actor)s changed the About page"),
    "federation.retry": N_("%(actor)s asked for deliveries to %(target)s to be retried now"),
    "domain_block.create": N_("%(actor)s blocked %(target)s (%(severity)s)"),
    "domain_block.update": N_("%(actor)s changed the block of %(target)s (%(severity)s)"),
    "domain_block.delete": N_("%(actor)s lifted the block of %(target)s"),
    "domain_allow.create": N_("%(actor)s added %(target)s to the allowlist"),
    "domain_allow.delete": N_("%(actor)s removed %(target)s from the allowlist"),
    "registration.create": N_("%(actor)s signed up"),
    "registration.create/awaiting_approval": N_("%(actor)s signed up and waits for approval"),
    "registration.approve": N_("%(actor)s approved the sign-up of %(target)s"),
    "registration.reject": N_("%(actor)s rejected the sign-up of %(target)s"),
}
UNKNOWN_ACTION = N_("%(actor)s: %(action)s %(target)s")
# Domain blocks and the allowlist can be changed with the `herold` command, which has no login.
COMMAND_LINE = N_("An administrator at the command line")
SEVERITIES = {
    "suspend": N_("suspended"),
    "silence": N_("silenced"),
}
BLOCK_OPTIONS = {
    "reject_media": N_("media rejected"),
    "reject_reports": N_("reports rejected"),
}
# Codes whose target is a user id (a rejected sign-up's user is gone: shown as its number).
USER_TARGETS = ("staff.role", "staff.disable", "staff.enable", "registration.approve", "registration.reject")
# Codes whose target is a domain, and the admin page that lists it.
DOMAIN_PAGES = {
    "domain_block": "/admin/domains",
    "domain_allow": "/admin/domains",
    "federation": "/admin/federation",
}


@dataclass(frozen=True)
class AuditLine:
    created_at: datetime
    sentence: Markup
    action: str


def sentence_key(entry: AuditLogEntry) -> str:
    """The SENTENCES key for an entry: its code, or code/variant where the data changes the words."""
    data = entry.data or {}
    if entry.action == "staff.create":
        if data.get("organization"):
            return "staff.create/organization"
        return "staff.create/admin" if data.get("role") == "admin" else "staff.create"
    if entry.action == "staff.role":
        return "staff.role/admin" if data.get("role") == "admin" else "staff.role/staff"
    if entry.action == "report.create" and data.get("forwarded"):
        return "report.create/forwarded"
    if entry.action == "registration.create" and data.get("awaiting_approval"):
        return "registration.create/awaiting_approval"
    return entry.action


async def audit_lines(
    context: AppContext, entries: Sequence[AuditLogEntry], gettext: Callable[[str], str]
) -> list[AuditLine]:
    """One sentence per entry, in the language of `gettext`, newest first as given."""
    found = await _Lookup.load(context, entries)
    lines = []
    for entry in entries:
        key = sentence_key(entry)
        actor = found.user_link(entry.user_id) if entry.user_id else escape(gettext(COMMAND_LINE))
        parts: dict[str, Any] = {"actor": actor, "target": found.target_link(entry)}
        data = entry.data or {}
        if entry.action.startswith("delegate."):
            parts["member"] = found.user_link(_int(data.get("user_id")))
        if entry.action.startswith("domain_block."):
            words = [gettext(SEVERITIES.get(str(data.get("severity")), str(data.get("severity"))))]
            words += [gettext(label) for option, label in BLOCK_OPTIONS.items() if data.get(option)]
            parts["severity"] = ", ".join(words)
        template = SENTENCES.get(key)
        if template is None:
            parts["action"] = Markup("<code>%s</code>") % entry.action
            template = UNKNOWN_ACTION
        lines.append(AuditLine(entry.created_at, escape(gettext(template)) % parts, entry.action))
    return lines


@dataclass
class _Lookup:
    """The accounts, logins and reports the entries name, read in a few queries."""

    accounts_by_uri: dict[str, Account]
    accounts_by_id: dict[int, Account]
    accounts_by_user: dict[int, Account]
    reports: dict[int, Report]

    @classmethod
    async def load(cls, context: AppContext, entries: Sequence[AuditLogEntry]) -> _Lookup:
        user_ids: set[int] = set()
        account_ids: set[int] = set()
        uris: set[str] = set()
        report_ids: set[int] = set()
        for entry in entries:
            data = entry.data or {}
            if entry.user_id:
                user_ids.add(entry.user_id)
            if entry.action in ("staff.create", "delegate.grant", "report.create"):
                uris.add(entry.target)
            elif entry.action in USER_TARGETS:
                user_ids.add(_int(entry.target))
            elif entry.action == "delegate.revoke":
                account_ids.add(_int(entry.target))
            if entry.action.startswith("delegate."):
                user_ids.add(_int(data.get("user_id")))
            if entry.action == "report.resolve":
                report_ids.add(_int(entry.target))
        async with context.sessions() as session:
            reports = {
                report.id: report
                for report in (
                    await session.scalars(select(Report).where(col(Report.id).in_(report_ids)))
                ).all()
            }
            account_ids |= {
                report.target_account_id for report in reports.values() if report.target_account_id
            }
            by_user = {
                user_id: account
                for user_id, account in (
                    await session.execute(
                        select(User.id, Account)
                        .join(Account, col(Account.id) == col(User.account_id))
                        .where(col(User.id).in_(user_ids))
                    )
                ).all()
            }
            accounts = (
                await session.scalars(
                    select(Account).where(col(Account.id).in_(account_ids) | col(Account.uri).in_(uris))
                )
            ).all()
        return cls(
            accounts_by_uri={account.uri: account for account in accounts},
            accounts_by_id={account.id: account for account in accounts},
            accounts_by_user=by_user,
            reports=reports,
        )

    def user_link(self, user_id: int) -> Markup:
        account = self.accounts_by_user.get(user_id)
        return _account_link(account) if account else Markup("<span>%s</span>") % f"#{user_id}"

    def target_link(self, entry: AuditLogEntry) -> Markup:
        action, target = entry.action, entry.target
        if action in USER_TARGETS:
            return self.user_link(_int(target))
        if action == "delegate.revoke":
            account = self.accounts_by_id.get(_int(target))
            return _account_link(account) if account else escape(f"#{target}")
        if action == "report.resolve":
            report = self.reports.get(_int(target))
            if report is None:
                return escape(f"#{target}")
            account = self.accounts_by_id.get(report.target_account_id or 0)
            return _account_link(account) if account else _uri_link(report.target_uri, report.target_handle)
        if action in ("staff.create", "delegate.grant", "report.create"):
            account = self.accounts_by_uri.get(target)
            return _account_link(account) if account else _uri_link(target, "")
        page = DOMAIN_PAGES.get(action.split(".", 1)[0])
        if page:
            return Markup('<a href="%s">%s</a>') % (page, target)
        return escape(target)


def _account_link(account: Account) -> Markup:
    """The account's handle, linked as the staff pages link accounts (remote ones to the search page)."""
    handle = f"@{account.username}" if account.domain is None else f"@{account.username}@{account.domain}"
    href = (
        account.url or account.uri if account.domain is None else "/search?q=" + quote(account.uri, safe="")
    )
    return Markup('<a href="%s">%s</a>') % (href, handle)


def _uri_link(uri: str, handle: str) -> Markup:
    """An account no longer stored here (purged with its domain): its kept handle or address."""
    text = f"@{handle}" if handle else uri
    url = http_url(uri)
    return Markup('<a href="%s">%s</a>') % (url, text) if url != "#" else escape(text)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
