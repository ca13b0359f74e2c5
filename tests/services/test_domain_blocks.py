"""Domain policy: matching, CSV import/export, the allowlist, the CLI, the admin page and the public list."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from app import cli
from app.activitypub.parsers import authority
from app.models import AuditLogEntry, DeliveryJob, DomainBlock, JobState, OutboxActivity, Role
from app.models.base import utcnow
from app.services.domain_blocks import (
    DomainBlockError,
    DomainBlockService,
    domain_label,
    normalize_domain,
    unicode_domain,
)
from app.services.moderation import BlockRule, DomainPolicy
from tests.federation.delivery_helpers import local_account
from tests.lab import DatabaseFactory, Instance
from tests.processes import herold_env
from tests.web.helpers import Browser, logged_in, new_client


def policy(blocks: dict[str, str], allowed: set[str] | None = None) -> DomainPolicy:
    since = utcnow()
    return DomainPolicy(
        {name: BlockRule(name, severity, False, False, since) for name, severity in blocks.items()},
        frozenset(allowed) if allowed is not None else None,
        frozenset({"here.test"}),
    )


def test_a_block_covers_the_host_its_subdomains_and_any_port() -> None:
    rules = policy({"threads.net": "suspend", "news.example.org": "silence", "example.org": "suspend"})
    for host in ["threads.net", "www.threads.net", "THREADS.NET:443", "a.b.threads.net.", "threads.net:8443"]:
        assert rules.suspending(host) == "threads.net", host
    for host in ["notthreads.net", "threads.net.evil.test", "net", "here.test"]:
        assert rules.suspending(host) is None, host
    # The most specific block decides.
    assert rules.suspending("news.example.org") is None
    assert rules.silencing("cdn.news.example.org:80") == "news.example.org"
    assert rules.suspending("example.org") == "example.org"


def test_a_block_typed_in_unicode_covers_the_servers_urls_whichever_way_they_are_written() -> None:
    """Blocks are stored in punycode, and so is every host we take from a URL (actors, keyIds,
    inboxes): an internationalised name matches however the peer spells it."""
    rules = policy({normalize_domain("bücher.example"): "suspend"})
    for url in [
        "https://bücher.example/inbox",
        "https://BÜCHER.example:8443/users/a",
        "https://xn--bcher-kva.example/x",
    ]:
        assert rules.suspending(authority(url)) == "xn--bcher-kva.example", url


def test_media_checks_take_any_url_a_remote_server_sends() -> None:
    rules = policy({})
    assert rules.embeds_media("peer.test", "https://peer.test/avatar.png")
    # An unparseable icon URL from a remote actor is not embedded, and breaks no page.
    assert not rules.embeds_media("peer.test", "https://[x/a.png")


def test_allowlist_mode_lets_only_listed_domains_and_ourselves_federate() -> None:
    rules = policy({}, allowed={"friends.test"})
    assert rules.suspending("friends.test:8000") is None
    assert rules.suspending("social.friends.test") is None
    assert rules.suspending("stranger.test") == "stranger.test"
    assert rules.suspending("here.test") is None
    assert rules.refuses_delivery("stranger.test", utcnow()) is not None


def test_deliveries_queued_before_a_suspension_still_go_later_ones_do_not() -> None:
    rules = policy({"t.test": "suspend"})
    since = rules.blocks["t.test"].since
    assert rules.refuses_delivery("t.test", since - timedelta(seconds=1)) is None
    assert "suspended" in (rules.refuses_delivery("t.test", since + timedelta(seconds=1)) or "")


@pytest.mark.parametrize(
    ("typed", "domain"),
    [
        ("Threads.NET", "threads.net"),
        ("  threads.net ", "threads.net"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("Bücher.Example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("127.0.0.2", "127.0.0.2"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        # Encoded as hosts taken from actors, keyIds and inboxes are (ascii_hostname), so it matches them.
        ("faß.de", "fass.de"),
    ],
)
def test_a_domain_is_stored_in_lower_case_and_idna(typed: str, domain: str) -> None:
    assert normalize_domain(typed) == domain
    if not domain.replace(".", "").replace(":", "").isdigit() and ":" not in domain:
        assert authority(f"https://{typed.strip()}/users/someone") == domain


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        (
            "not_a_domain!!",
            "'not_a_domain!!' is not a domain: it contains characters a host name cannot have",
        ),
        ("http://evil.example/path", "is a web address: enter just its domain (evil.example)"),
        ("https://Threads.net/", "is a web address: enter just its domain (threads.net)"),
        ("evil.example/path", "has a path: enter just the domain ('evil.example')"),
        ("threads.net:443", "a block covers every port, enter just 'threads.net'"),
        ("*.threads.net", "a block already covers every subdomain, enter just 'threads.net'"),
        ("threads.net.", "without the final dot"),
        ("a..b", "empty part"),
        ("-evil.example", "starts or ends with a hyphen"),
        ("x" * 64 + ".example", "longer than 63 characters"),
        ("xn--zz.example", "is not a valid internationalised domain name"),
        ("1.2.3", "neither a domain nor an IP address"),
        ("a b", "a space"),
        ("user@host", "without a user"),
        ("", "enter a domain"),
    ],
)
def test_what_is_no_domain_is_refused_saying_what_is_wrong(typed: str, says: str) -> None:
    with pytest.raises(DomainBlockError) as refused:
        normalize_domain(typed)
    assert says in str(refused.value)


def test_internationalised_names_are_shown_in_unicode_beside_their_idna_form() -> None:
    assert domain_label("xn--bcher-kva.example") == "bücher.example (xn--bcher-kva.example)"
    assert domain_label("threads.net") == "threads.net"
    assert unicode_domain("xn--zz.example") is None


@pytest.mark.parametrize("typed", ["", "   ", "a b", "user@host", "..", "a..b", "<script>"])
def test_nonsense_is_refused(typed: str) -> None:
    with pytest.raises(DomainBlockError):
        normalize_domain(typed)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_normalize_never_raises_anything_but_domain_block_error(value: str) -> None:
    try:
        normalize_domain(value)
    except DomainBlockError:
        pass


async def test_a_suspension_fails_the_deliveries_waiting_for_the_domain_on_any_subdomain_or_port(
    instance: Instance,
) -> None:
    alice = await local_account(instance, "alice")
    hosts = [
        "threads.net",
        "www.threads.net:8443",
        "threads.net:443",
        "notthreads.net",
        "threads.net.evil.test",
    ]
    async with instance.context.sessions() as session:
        activity = OutboxActivity(uri="http://here.test/a/1", activity_type="Create", account_id=alice.id)
        session.add(activity)
        await session.flush()
        for host in hosts:
            session.add(DeliveryJob(activity_id=activity.id, inbox_url=f"https://{host}/inbox", host=host))
        await session.commit()
    _block, effects = await DomainBlockService(instance.context).block("threads.net")
    assert effects.deliveries_dropped == 3
    async with instance.context.sessions() as session:
        states = {job.host: job.state for job in (await session.scalars(select(DeliveryJob))).all()}
    assert states == {
        "threads.net": JobState.FAILED,
        "www.threads.net:8443": JobState.FAILED,
        "threads.net:443": JobState.FAILED,
        "notthreads.net": JobState.QUEUED,
        "threads.net.evil.test": JobState.QUEUED,
    }


async def test_csv_round_trip_in_mastodons_format(instance: Instance) -> None:
    service = DomainBlockService(instance.context)
    imported = await service.import_csv(
        "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n"
        "threads.net,suspend,false,false,Meta,false\n"
        'gab.test,silence,true,true,"Hate, speech",false\n'
        "noop.test,noop,true,false,,false\n"
        "not a domain,suspend,false,false,,false\n"
    )
    assert imported.imported == 2 and sorted(imported.skipped) == [
        "'not a domain' is not a domain: it contains a space or an invisible character",
        "noop.test: Mastodon's severity noop has no equivalent here",
    ]
    exported = await service.export_csv()
    assert exported.splitlines() == [
        "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate",
        'gab.test,silence,true,true,"Hate, speech",false',
        "threads.net,suspend,false,false,Meta,false",
    ]
    plain = await service.import_csv("one.test\ntwo.test\n")
    assert plain.imported == 2
    with pytest.raises(DomainBlockError):
        await service.block(instance.domain)


async def test_public_list_on_the_api_and_about(instance: Instance) -> None:
    await DomainBlockService(instance.context).block(
        "threads.net", public_comment="Meta", private_comment="secret"
    )
    listed = (await instance.client.get("/api/v1/instance/domain_blocks")).json()
    assert [(row["domain"], row["severity"], row["comment"]) for row in listed] == [
        ("threads.net", "suspend", "Meta")
    ]
    assert len(listed[0]["digest"]) == 64
    about = (await instance.client.get("/about")).text
    assert "threads.net" in about and "Meta" in about and "secret" not in about
    await DomainBlockService(instance.context).block("bücher.example", severity="silence")
    about = (await instance.client.get("/about")).text
    assert "bücher.example (xn--bcher-kva.example)" in about


async def test_admin_page_blocks_unblocks_imports_and_audits(instance: Instance) -> None:
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    staff = await logged_in(instance, "carol")
    assert (await staff.get("/admin/domains")).status_code in (403, 404)
    assert (await staff.post("/admin/domains", {"domain": "x.test"})).status_code in (403, 404)
    page = await admin.get("/admin/domains")
    assert page.status_code == 200
    made = await admin.post(
        "/admin/domains",
        {"domain": "threads.net", "severity": "silence", "reject_media": "1", "public_comment": "Meta"},
    )
    assert made.status_code == 303
    assert (await admin.post("/admin/domains", {"domain": "x y"})).status_code == 400
    assert (
        await admin.post("/admin/domains", {"domain": "a.test", "severity": "obliterate"})
    ).status_code == 400
    # No token, no change.
    anonymous = Browser(new_client(instance))
    assert (await admin.client.post("/admin/domains", data={"domain": "evil.test"})).status_code == 403
    assert (await anonymous.client.post("/admin/domains", data={"domain": "evil.test"})).status_code == 403
    imported = await admin.post("/admin/domains/import", {"blocks_csv": "one.test\ntwo.test"})
    assert imported.status_code == 303
    partly = await admin.post("/admin/domains/import", {"blocks_csv": "three.test\nnot a domain"})
    assert partly.status_code == 200
    assert "1 domain blocks were imported; these rows were skipped: " in partly.text
    assert "&#39;not a domain&#39; is not a domain: it contains a space" in partly.text
    for typed, says in [
        ("not_a_domain!!", "is not a domain: it contains characters a host name cannot have"),
        ("http://evil.example/path", "is a web address: enter just its domain (evil.example)"),
    ]:
        refused = await admin.post("/admin/domains", {"domain": typed})
        assert refused.status_code == 400 and says in refused.text
    assert (await admin.post("/admin/domains", {"domain": "Bücher.example"})).status_code == 303
    listed = await admin.get("/admin/domains")
    assert "bücher.example (xn--bcher-kva.example)" in listed.text
    assert (await admin.post("/admin/domains/unblock", {"domain": "bücher.example"})).status_code == 303
    export = await admin.get("/admin/domains/export.csv")
    assert export.headers["content-type"].startswith("text/csv") and "threads.net,silence,true" in export.text
    assert (await admin.post("/admin/domains/unblock", {"domain": "threads.net"})).status_code == 303
    assert (await admin.post("/admin/domains/unblock", {"domain": "threads.net"})).status_code == 404
    assert (await admin.post("/admin/domains/allow", {"domain": "friends.test"})).status_code == 303
    async with instance.context.sessions() as session:
        actions = [row for row in (await session.scalars(select(AuditLogEntry.action))).all()]
        left = (await session.scalars(select(DomainBlock.domain))).all()
    assert {"domain_block.create", "domain_block.delete", "domain_allow.create"} <= set(actions)
    assert sorted(left) == ["one.test", "three.test", "two.test"]


def test_cli_blocks_lists_exports_imports_and_unblocks(
    tmp_path: object,
    databases: DatabaseFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path))
    env = herold_env(
        directory / "data", asyncio.run(databases.new_database_url()), LOCAL_DOMAIN="cli.test", HTTPS="false"
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(directory)

    def run(*args: str) -> tuple[int, str, str]:
        status = cli.main(list(args))
        out = capsys.readouterr()
        return status, out.out, out.err

    assert run("domains", "block", "threads.net", "--severity", "suspend", "--public-comment", "Meta")[0] == 0
    assert run("domains", "block", "gab.test", "--severity", "silence", "--reject-media")[0] == 0
    status, out, _ = run("domains", "list")
    assert status == 0 and "threads.net" in out and "suspend" in out and "reject-media" in out
    status, out, _ = run("domains", "export")
    assert "threads.net,suspend,false,false,Meta,false" in out
    (directory / "blocks.csv").write_text("#domain,#severity\nnew.test,silence\n", encoding="utf-8")
    assert "imported 1" in run("domains", "import", str(directory / "blocks.csv"))[1]
    assert run("domains", "unblock", "threads.net")[0] == 0
    status, _, err = run("domains", "unblock", "threads.net")
    assert status == 1 and "not blocked" in err
    status, _, err = run("domains", "block", "not a domain")
    assert status == 1 and "not a domain" in err and "Traceback" not in err
    status, _, err = run("domains", "block", "http://evil.example/path")
    assert status == 1 and "enter just its domain (evil.example)" in err and "Traceback" not in err
    assert run("domains", "block", "bücher.example")[0] == 0
    status, out, _ = run("domains", "list")
    assert "bücher.example (xn--bcher-kva.example)" in out
    status, out, _ = run("domains", "list", "--json")
    blocks = json.loads(out)["blocks"]
    assert {"domain": "xn--bcher-kva.example", "unicode": "bücher.example"} in [
        {"domain": row["domain"], "unicode": row["unicode"]} for row in blocks
    ]
