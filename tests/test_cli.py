"""The `herold` command, run as operators run it: a real process on the same database as the server."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from sqlmodel import select

from app.models import Post, Role
from app.services.staff import StaffService
from tests.lab import DatabaseFactory, Lab
from tests.processes import herold_env, run_herold
from tests.web.helpers import make_user


@pytest.fixture
async def cli_env(tmp_path: Path, databases: DatabaseFactory) -> dict[str, str]:
    return herold_env(
        tmp_path / "data", await databases.new_database_url(), LOCAL_DOMAIN="cli.test", HTTPS="false"
    )


async def test_create_list_and_password(cli_env: dict[str, str]) -> None:
    created = run_herold(["accounts", "create", "alice", "--role", "admin"], cli_env)
    assert created.returncode == 0, created.stderr
    assert "@alice@cli.test" in created.stdout
    password_line = [line for line in created.stdout.splitlines() if line.startswith("password: ")]
    assert len(password_line) == 1 and len(password_line[0].split(": ", 1)[1]) >= 12

    # An organisation account has no password: nobody logs in as it, staff post as it.
    org = run_herold(["accounts", "create", "knnktv", "--organization"], cli_env)
    assert org.returncode == 0, org.stderr
    assert "organisation account @knnktv@cli.test" in org.stdout
    assert "\npassword: " not in org.stdout and "(staff)" not in org.stdout
    assert "it has no password" in org.stdout
    assert "--by NAME" in org.stdout
    with_password = run_herold(
        ["accounts", "create", "townhall", "--organization", "--password", "correct horse"], cli_env
    )
    assert with_password.returncode == 1
    assert "organisation accounts have no password" in with_password.stderr
    no_password = run_herold(["accounts", "password", "knnktv"], cli_env)
    assert no_password.returncode == 1 and "Traceback" not in no_password.stderr
    assert "organisation accounts have no password" in no_password.stderr

    listed = run_herold(["accounts", "list", "--json"], cli_env)
    rows = {row["username"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == {"alice", "knnktv"}
    assert rows["alice"]["role"] == "admin" and rows["alice"]["type"] == "Person"
    assert rows["knnktv"]["role"] is None and rows["knnktv"]["type"] == "Organization"
    assert rows["knnktv"]["uri"] == "http://cli.test/users/knnktv"
    table = run_herold(["accounts", "list"], cli_env).stdout.splitlines()
    org_line = next(line for line in table if "@knnktv@" in line)
    assert org_line.split()[-1] == "organisation" and "staff" not in org_line

    changed = run_herold(["accounts", "password", "alice"], cli_env)
    assert changed.returncode == 0 and changed.stdout.startswith("password: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["accounts", "create", "Bad Name!"], "not a valid user name"),
        (["accounts", "create", "bob", "--password", "short"], "at least 8 characters"),
        (["accounts", "create", "bob", "--password", "iloveyou1"], "one of the most common"),
        (["accounts", "password", "nobody"], "no local account named 'nobody'"),
    ],
)
async def test_refusals_are_one_clear_line(cli_env: dict[str, str], args: list[str], message: str) -> None:
    result = run_herold(args, cli_env)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


async def test_duplicate_name_is_refused(cli_env: dict[str, str]) -> None:
    assert run_herold(["accounts", "create", "carol"], cli_env).returncode == 0
    again = run_herold(["accounts", "create", "Carol"], cli_env)
    assert again.returncode == 1
    assert "already taken" in again.stderr


async def test_cli_works_on_the_database_of_a_running_server(lab: Lab, tmp_path: Path) -> None:
    server = await lab.instance("a.test")
    before = await server.client.get("/.well-known/webfinger", params={"resource": "acct:dora@a.test"})
    assert before.status_code == 404

    env = herold_env(
        tmp_path / "cli-data", server.settings.database_url, LOCAL_DOMAIN="a.test", HTTPS="false"
    )
    # In a thread: the server runs on this event loop, and a write transaction of its worker must
    # be able to finish while the CLI waits for the lock (blocking the loop would deadlock them).
    result = await asyncio.to_thread(run_herold, ["accounts", "create", "dora"], env)
    assert result.returncode == 0, result.stderr

    after = await server.client.get("/.well-known/webfinger", params={"resource": "acct:dora@a.test"})
    assert after.status_code == 200
    actor = await server.client.get("/users/dora", headers={"Accept": "application/activity+json"})
    assert actor.json()["publicKey"]["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")


async def test_post_as_an_organisation_records_who_wrote_it(lab: Lab, tmp_path: Path) -> None:
    server = await lab.instance("a.test")
    admin, _ = await make_user(server, "boss", role=Role.ADMIN)
    alice, _ = await make_user(server, "alice")
    await make_user(server, "bob")
    _org_user, org = await make_user(server, "knnktv", organization=True)
    await StaffService(server.context).grant_delegate(org.id, alice.id, by=admin)
    env = herold_env(
        tmp_path / "cli-data", server.settings.database_url, LOCAL_DOMAIN="a.test", HTTPS="false"
    )

    async def herold(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(run_herold, list(args), env)

    unsigned = await herold("post", "knnktv", "Opening hours change")
    assert unsigned.returncode == 1 and "--by NAME" in unsigned.stderr
    not_allowed = await herold("post", "knnktv", "Opening hours change", "--by", "bob")
    assert not_allowed.returncode == 1 and "@bob may not post as @knnktv" in not_allowed.stderr
    assert "Traceback" not in not_allowed.stderr
    posted = await herold("post", "knnktv", "Opening hours change", "--by", "alice")
    assert posted.returncode == 0, posted.stderr
    own = await herold("post", "bob", "My own words")
    assert own.returncode == 0, own.stderr
    async with server.context.sessions() as session:
        posts = {post.uri: post for post in await session.scalars(select(Post))}
    org_post = posts[posted.stdout.strip().splitlines()[-1]]
    assert org_post.account_id == org.id and org_post.written_by_user_id == alice.id
    assert posts[own.stdout.strip().splitlines()[-1]].written_by_user_id is not None


def test_cli_help_lists_commands() -> None:
    result = run_herold(["--help"], herold_env(Path("/nonexistent"), "sqlite:///unused.db"))
    assert result.returncode == 0
    for command in ("serve", "worker", "migrate", "accounts"):
        assert command in result.stdout


async def test_unmigrated_database_is_one_line_pointing_at_migrate(tmp_path: Path) -> None:
    env = herold_env(tmp_path / "data", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    for args in (["accounts", "list"], ["serve"]):
        result = run_herold(args, env)
        assert result.returncode == 1
        assert "run `herold migrate` first" in result.stderr
        assert "Traceback" not in result.stderr
