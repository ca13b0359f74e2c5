"""Tokens made without the authorize page (`herold tokens create`, Settings → Development), the
command-line twin of Admin → Team (`herold accounts allow-posting-as`), and Settings → Applications."""

from __future__ import annotations

import re
from pathlib import Path

from app.config import Settings
from app.context import build_context
from app.services.oauth import OAuthService
from tests.api.oauth_helpers import user_token
from tests.lab import DatabaseFactory, Instance
from tests.processes import herold_env, run_herold
from tests.web.helpers import logged_in, make_user

PASSWORD = "a long enough password"


async def test_tokens_create_prints_the_token_alone_and_may_act_as_an_organisation(
    tmp_path: Path, databases: DatabaseFactory
) -> None:
    database_url = await databases.new_database_url()
    env = herold_env(tmp_path / "data", database_url, LOCAL_DOMAIN="cli.test", HTTPS="false")
    for args in (
        ["alice", "--password", PASSWORD],
        ["carol", "--password", PASSWORD],
        ["townhall", "--organization"],
    ):
        made = run_herold(["accounts", "create", *args], env)
        assert made.returncode == 0, made.stderr
    mine = run_herold(["tokens", "create", "alice", "--scopes", "read write"], env)
    assert mine.returncode == 0, mine.stderr
    refused = run_herold(["tokens", "create", "alice", "--as", "townhall"], env)
    assert refused.returncode == 1 and "may not post as @townhall" in refused.stderr
    allowed = run_herold(["accounts", "allow-posting-as", "alice", "townhall"], env)
    assert allowed.returncode == 0, allowed.stderr
    as_org = run_herold(["tokens", "create", "@alice", "--as", "@townhall", "--app", "Newsroom bot"], env)
    assert as_org.returncode == 0, as_org.stderr
    bad_scope = run_herold(["tokens", "create", "alice", "--scopes", "read everything"], env)
    assert bad_scope.returncode == 1 and "everything" in bad_scope.stderr
    org_itself = run_herold(["tokens", "create", "townhall"], env)
    assert org_itself.returncode == 1 and "organisation account" in org_itself.stderr

    token_line = re.compile(r"[A-Za-z0-9_-]{40,}\n")
    assert token_line.fullmatch(mine.stdout) and token_line.fullmatch(as_org.stdout)
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        data_dir=tmp_path / "data",
        local_domain="cli.test",
        https=False,
        secret_key="test-secret-key-of-a-herold-process",
    )
    context = build_context(settings)
    try:
        service = OAuthService(context)
        holder = await service.token_holder(mine.stdout.strip())
        assert holder is not None and holder.acting_account is not None
        assert holder.acting_account.username == "alice" and holder.token.scopes == "read write"
        org_holder = await service.token_holder(as_org.stdout.strip())
        assert org_holder is not None and org_holder.acting_account is not None
        assert (
            org_holder.acting_account.username == "townhall" and org_holder.application.name == "Newsroom bot"
        )
        revoked = run_herold(["accounts", "allow-posting-as", "alice", "townhall", "--revoke"], env)
        assert revoked.returncode == 0, revoked.stderr
        assert revoked.stdout.strip() == "@alice may no longer post as @townhall"
        # (That the API then refuses the organisation token: test_oauth, through the API itself.)
    finally:
        await context.aclose()


async def test_settings_list_authorized_apps_and_revoke_them(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    token = await user_token(instance.client, alice)
    auth = {"Authorization": f"Bearer {token}"}
    assert (await instance.client.get("/api/v1/apps/verify_credentials", headers=auth)).status_code == 200
    page = await alice.get("/settings/applications")
    assert page.status_code == 200 and "Tusky" in page.text and "Last used" in page.text
    application_id = re.search(r'data-application="(\d+)"', page.text)
    assert application_id is not None
    revoked = await alice.post(f"/settings/applications/{application_id.group(1)}/revoke")
    assert revoked.status_code == 303
    assert (await instance.client.get("/api/v1/apps/verify_credentials", headers=auth)).status_code == 401
    assert "Tusky" not in (await alice.get("/settings/applications")).text
    # Another person's app id revokes nothing of alice's.
    bob = await logged_in(instance, "bob")
    token = await user_token(instance.client, alice)
    await bob.post(f"/settings/applications/{application_id.group(1)}/revoke")
    auth = {"Authorization": f"Bearer {token}"}
    assert (await instance.client.get("/api/v1/apps/verify_credentials", headers=auth)).status_code == 200
    await alice.aclose()
    await bob.aclose()


async def test_development_makes_an_application_and_shows_its_token_once(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    await make_user(instance, "townhall", organization=True)
    form = await alice.get("/settings/development")
    assert form.status_code == 200 and "@alice" in form.text and "@townhall" not in form.text
    made = await alice.post("/settings/development", {"name": "My script", "scopes": "read"})
    assert made.status_code == 200
    token = re.search(r'id="access-token" readonly value="([^"]+)"', made.text)
    assert token is not None
    verified = await instance.client.get(
        "/api/v1/apps/verify_credentials", headers={"Authorization": f"Bearer {token.group(1)}"}
    )
    assert verified.status_code == 200 and verified.json()["name"] == "My script"
    blank = await alice.post("/settings/development", {"name": "", "scopes": "read"})
    assert blank.status_code == 422
    await alice.aclose()
