"""The audit log on the Team page says who did what to whom, in words, with links, in both languages."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

from sqlmodel import col, select

from app.models import Account, AuditLogEntry, Role, User
from app.services.account_moderation import AccountModerationService, ReportQueue
from app.services.domain_blocks import DomainBlockService
from app.services.instance import DeliveryStatusService, InstanceAbout, InstanceService
from app.services.staff import StaffService
from app.web.audit_log import SENTENCES, sentence_key
from tests.lab import Instance
from tests.web.helpers import Browser, logged_in, make_user

APP = Path(__file__).resolve().parents[2] / "app"
CODE = re.compile(r"^[a-z_]+\.[a-z_]+$")


def written_action_codes() -> set[str]:
    """Every action code app/ writes to the audit log: the literal `action=` of an AuditLogEntry, and
    the code-shaped literals passed to an `_audit` helper."""
    codes: set[str] = set()
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name == "AuditLogEntry":
                arguments: list[ast.AST] = [k.value for k in node.keywords if k.arg == "action"]
            elif name.endswith("_audit"):
                arguments = [*node.args, *(k.value for k in node.keywords)]
            else:
                continue
            for argument in arguments:
                for part in ast.walk(argument):
                    if (
                        isinstance(part, ast.Constant)
                        and isinstance(part.value, str)
                        and CODE.match(part.value)
                    ):
                        codes.add(part.value)
    return codes


def test_every_action_code_written_has_a_sentence() -> None:
    codes = written_action_codes()
    # The scan finds the writers (if it found nothing, it would prove nothing).
    assert {"staff.create", "domain_block.create", "report.resolve", "instance.update"} <= codes
    variants = {
        "staff.create": [{}, {"role": "admin"}, {"organization": True}],
        "staff.role": [{"role": "admin"}, {"role": "staff"}],
        "report.create": [{}, {"forwarded": True}],
    }
    missing = [
        (code, data)
        for code in sorted(codes)
        for data in variants.get(code, [{}])
        if sentence_key(AuditLogEntry(action=code, target="", data=data)) not in SENTENCES
    ]
    assert missing == [], f"audit codes shown raw, without a sentence: {missing}"


async def test_the_team_page_tells_the_audit_log_in_words(instance: Instance) -> None:
    admin = await logged_in(instance, "alice", role=Role.ADMIN)
    alice_account = await session_account(instance, "alice")
    async with instance.context.sessions() as session:
        alice = (await session.scalars(select(User).where(col(User.account_id) == alice_account.id))).one()

    # The team page shows the latest 20 actions: two rounds of ten, each read after it is done.
    staff = StaffService(instance.context)
    bob = await staff.create_member("bob", by=alice)
    await staff.create_member("carol", by=alice, role=Role.ADMIN)
    town = await staff.create_member("townhall", by=alice, organization=True)
    await staff.set_role(bob.user.id, Role.ADMIN, by=alice)
    await staff.set_role(bob.user.id, Role.STAFF, by=alice)
    await staff.set_disabled(bob.user.id, True, by=alice)
    await staff.set_disabled(bob.user.id, False, by=alice)
    await staff.grant_delegate(town.account.id, bob.user.id, by=alice)
    await staff.revoke_delegate(town.account.id, bob.user.id, by=alice)
    audit, said = await audit_log_of(admin)
    for sentence in (
        "@alice invited @bob",
        "@alice invited @carol as an administrator",
        "@alice created the organisation account @townhall",
        "@alice made @bob an administrator",
        "@alice made @bob a staff member (no longer an administrator)",
        "@alice disabled the login of @bob",
        "@alice enabled the login of @bob again",
        "@alice allowed @bob to post as @townhall",
        "@alice withdrew the right of @bob to post as @townhall",
    ):
        assert sentence in said, f"{sentence!r} not in the audit log:\n{said}"
    assert 'invited <a href="http://a.test/@bob">@bob</a>' in audit
    assert '<a href="http://a.test/@alice">@alice</a>' in audit
    german = (await admin.get("/admin/staff", headers={"Accept-Language": "de"})).text
    assert 'hat <a href="http://a.test/@bob">@bob</a> eingeladen' in german

    blocks = DomainBlockService(instance.context)
    await blocks.block("threads.net", severity="suspend", by=alice)
    await blocks.block("threads.net", severity="silence", reject_media=True, by=alice)
    await blocks.unblock("threads.net", by=alice)
    await blocks.block("spam.example")  # from the command line: nobody logged in
    await blocks.allow("friends.example", by=alice)
    await blocks.disallow("friends.example", by=alice)
    _, mallory = await make_user(instance, "mallory")
    report = await AccountModerationService(instance.context).report(
        alice, alice_account, mallory, comment="spam"
    )
    await ReportQueue(instance.context).resolve(report.id, by=alice)
    await InstanceService(instance.context).update_about(
        InstanceAbout(name="Town Hall", description="News"), by_user_id=alice.id
    )
    await DeliveryStatusService(instance.context).retry_domain("slow.example", by_user_id=alice.id)
    audit, said = await audit_log_of(admin)
    for sentence in (
        "@alice blocked threads.net (suspended)",
        "@alice changed the block of threads.net (silenced, media rejected)",
        "@alice lifted the block of threads.net",
        "An administrator at the command line blocked spam.example (suspended)",
        "@alice added friends.example to the allowlist",
        "@alice removed friends.example from the allowlist",
        "@alice reported @mallory",
        "@alice resolved the report about @mallory",
        "@alice changed the About page",
        "@alice asked for deliveries to slow.example to be retried now",
    ):
        assert sentence in said, f"{sentence!r} not in the audit log:\n{said}"
    assert '<a href="/admin/domains">threads.net</a>' in audit
    assert '<a href="/admin/federation">slow.example</a>' in audit
    assert 'reported <a href="http://a.test/@mallory">@mallory</a>' in audit
    german = (await admin.get("/admin/staff", headers={"Accept-Language": "de"})).text
    assert 'hat <a href="/admin/domains">threads.net</a> blockiert (gesperrt)' in german
    assert "Eine Administrator*in auf der Kommandozeile hat" in german


async def audit_log_of(admin: Browser) -> tuple[str, str]:
    """The audit section of the team page (HTML), and its lines as plain text; no raw code in them."""
    page = (await admin.get("/admin/staff")).text
    audit = page[page.index("Recent administrative actions") :]
    lines = [
        " ".join(html.unescape(re.sub(r"<[^>]+>", "", item)).split())
        for item in re.findall(r"<li[^>]*>(.*?)</li>", audit, re.S)
    ]
    said = "\n".join(lines)
    raw = re.findall(
        r"\b(?:staff|delegate|domain_block|domain_allow|report|instance|federation)\.[a-z_]+", said
    )
    assert raw == [], f"raw action codes in the audit log: {raw}"
    return audit, said


async def session_account(instance: Instance, username: str) -> Account:
    async with instance.context.sessions() as session:
        return (await session.scalars(select(Account).where(Account.username == username))).one()
