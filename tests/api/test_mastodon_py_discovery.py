"""Mastodon.py against a real `herold serve`: search, lists, filters v2, followed tags and
conversations, as a bot or a script drives them (strict version check, as in test_mastodon_py)."""

from __future__ import annotations

from pathlib import Path

from mastodon import Mastodon

from tests.api.test_mastodon_py import PASSWORD, REDIRECT, SCOPES, authorize_as_a_browser
from tests.lab import DatabaseFactory
from tests.processes import ServerProcess, free_port, herold_env, run_herold


def logged_in(base: str, username: str) -> Mastodon:
    client_id, client_secret = Mastodon.create_app(
        "Herold test", scopes=SCOPES, redirect_uris=REDIRECT, api_base_url=base
    )
    api = Mastodon(client_id, client_secret, api_base_url=base, version_check_mode="created")
    url = api.auth_request_url(redirect_uris=REDIRECT, scopes=SCOPES, allow_http=True)
    api.log_in(
        code=authorize_as_a_browser(url, username), redirect_uri=REDIRECT, scopes=SCOPES, allow_http=True
    )
    return api


async def test_mastodon_py_searches_lists_filters_and_converses(
    tmp_path: Path, databases: DatabaseFactory
) -> None:
    port = free_port()
    base = f"http://localhost:{port}"
    env = herold_env(tmp_path / "data", await databases.new_database_url(), PORT=str(port), HTTPS="false")
    for name in ("alice", "bob"):
        made = run_herold(["accounts", "create", name, "--password", PASSWORD], env)
        assert made.returncode == 0, made.stderr
    server = ServerProcess(["serve"], env, tmp_path / "serve.log")
    try:
        server.wait_http(f"{base}/api/v1/instance")
        alice = logged_in(base, "alice")
        bob = logged_in(base, "bob")
        bob_account = bob.account_verify_credentials()
        agenda = bob.status_post("Council agenda #townhall: road works and the match on Sunday")

        found = alice.search_v2("bob", result_type="accounts")
        assert [account.acct for account in found.accounts] == ["bob"]
        found = alice.search_v2("agenda")
        assert [status.id for status in found.statuses] == [agenda.id]
        assert alice.search_v2("#town").hashtags[0].name == "townhall"

        alice.account_follow(bob_account.id)
        council = alice.list_create("Council", replies_policy="list", exclusive=False)
        alice.list_accounts_add(council.id, [bob_account.id])
        assert [account.acct for account in alice.list_accounts(council.id)] == ["bob"]
        later = bob.status_post("Minutes are out")
        # As Mastodon merges a new member's recent posts into the list, the earlier one shows too.
        assert [status.id for status in alice.timeline_list(council.id)] == [later.id, agenda.id]
        assert [found_list.id for found_list in alice.account_lists(bob_account.id)] == [council.id]

        sport = alice.create_filter_v2(
            "Paperwork", ["home"], "hide", keywords_attributes=[{"keyword": "minutes", "whole_word": True}]
        )
        assert sport.filter_action == "hide" and sport.keywords[0].keyword == "minutes"
        assert [item.id for item in alice.filters_v2()] == [sport.id]
        assert later.id not in [status.id for status in alice.timeline_home()]
        alice.delete_filter_v2(sport.id)
        assert later.id in [status.id for status in alice.timeline_home()]

        tag = alice.tag_follow("parks")
        assert tag.following is True
        assert [item.name for item in alice.followed_tags()] == ["parks"]

        message = bob.status_post("@alice see you there", visibility="direct")
        conversations = alice.conversations()
        assert conversations[0].unread is True and conversations[0].last_status.id == message.id
        assert alice.conversations_read(conversations[0].id).unread is False

        alice.list_delete(council.id)
        assert alice.lists() == []
    finally:
        server.stop()
