"""The `herold` command as a newcomer uses it: short handles, --version, quiet output, typos that are no crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import __version__
from tests.lab import DatabaseFactory
from tests.processes import herold_env, run_herold

PASSWORD = "a long enough password"


@pytest.fixture
async def cli_env(tmp_path: Path, databases: DatabaseFactory) -> dict[str, str]:
    env = herold_env(
        tmp_path / "data", await databases.new_database_url(), LOCAL_DOMAIN="cli.test", HTTPS="false"
    )
    for name in ("alice", "bob"):
        made = run_herold(["accounts", "create", name, "--password", PASSWORD], env)
        assert made.returncode == 0, made.stderr
    return env


def test_version_is_printed() -> None:
    result = run_herold(["--version"], herold_env(Path("/nonexistent"), "sqlite:///unused.db"))
    assert result.returncode == 0
    assert result.stdout.strip() == f"herold {__version__}"


@pytest.mark.parametrize("alice", ["@alice", "alice", "@alice@CLI.TEST"])
async def test_local_accounts_go_by_their_short_handles(cli_env: dict[str, str], alice: str) -> None:
    followed = run_herold(["follow", "@bob", alice], cli_env)
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.strip() == "following @alice@cli.test"
    posted = run_herold(["post", alice, "hello from the command line"], cli_env)
    assert posted.returncode == 0, posted.stderr
    timeline = run_herold(["timeline", "bob@cli.test"], cli_env)
    assert "@alice: hello from the command line" in timeline.stdout
    unfollowed = run_herold(["unfollow", "bob", alice], cli_env)
    assert unfollowed.returncode == 0, unfollowed.stderr
    assert unfollowed.stdout.strip() == "unfollowed @alice@cli.test"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["post", "@carl@elsewhere.example", "hi"], "is an account of elsewhere.example, not of this server"),
        (["follow", "bob", "@alice@mastodon..social"], "its domain has an empty part between dots"),
        (["post", "alice", ""], "a post needs some text"),
        (["timeline", "al ice"], "not a handle"),
        (["accounts", "password", "@nobody"], "no local account named 'nobody'"),
        (["post", "alice", "hi", "--reply-to", "9" * 25], "no post 9999"),
        (["delete-post", "alice", "9" * 25], "has no post 9999"),
        (["follow", "bob", "https://mastodon..social/users/a"], "is not a usable address"),
    ],
)
async def test_bad_input_is_one_line_and_a_failure(
    cli_env: dict[str, str], args: list[str], message: str
) -> None:
    result = run_herold(args, cli_env)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    "mention", ["@someone@mastodon..social", "@someone@" + "a" * 64 + ".example", "@x@xn--zz.example"]
)
async def test_a_mention_with_a_typo_stays_plain_text(cli_env: dict[str, str], mention: str) -> None:
    """The real network stack (no lab transport): the resolver used to raise UnicodeError from DNS."""
    posted = run_herold(["post", "alice", f"Thanks {mention}"], cli_env)
    assert posted.returncode == 0, posted.stderr
    assert "Traceback" not in posted.stderr
    timeline = run_herold(["timeline", "alice"], cli_env)
    assert f"@alice: Thanks {mention}" in timeline.stdout


async def test_commands_say_nothing_on_stderr_unless_verbose(cli_env: dict[str, str]) -> None:
    quiet = run_herold(["migrate"], cli_env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    listed = run_herold(["accounts", "list"], cli_env)
    assert listed.stderr == ""
    verbose = run_herold(["--verbose", "migrate"], cli_env)
    assert verbose.returncode == 0
    assert "INFO alembic" in verbose.stderr


async def test_media_usage_and_remove(cli_env: dict[str, str]) -> None:
    usage = run_herold(["media", "usage", "--json"], cli_env)
    assert usage.returncode == 0, usage.stderr
    assert '"attachments"' in usage.stdout and '"remote_not_cached": 0' in usage.stdout
    removed = run_herold(["media", "remove", "--days", "3", "--avatars", "--headers"], cli_env)
    assert removed.returncode == 0, removed.stderr
    assert "removed 0 cached remote attachments older than 3 days" in removed.stdout
    assert "removed 0 cached remote custom emoji older than 3 days" in removed.stdout
    assert '"cache/emojis"' in usage.stdout
    assert "removed 0 cached remote profile pictures" in removed.stdout
