"""Handles and host names as people type them: what is a handle, and which typos are none."""

from __future__ import annotations

import pytest

from app.activitypub.addresses import hostname_problem
from app.activitypub.resolver import ResolveError, parse_account_name, parse_handle

LOCAL = ("org.test", "social.org.test")


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("mastodon..social", "has an empty part between dots"),
        ("mastodon.social.", "has an empty part between dots"),
        ("a" * 64 + ".example", "has a part longer than 63 characters"),
        (".".join(["a" * 60] * 5), "is longer than 253 characters"),
        ("xn--zz.example", "is not a valid internationalised domain name"),
        ("[::1", "contains characters a host name cannot have"),
        ("evil.example/path", "contains characters a host name cannot have"),
    ],
)
def test_hosts_no_resolver_could_look_up(host: str, problem: str) -> None:
    assert hostname_problem(host) == problem


@pytest.mark.parametrize(
    "host",
    [
        "mastodon.social",
        "a" * 63 + ".example",
        "bücher.example",
        "xn--bcher-kva.example",
        "exa_mple.com",
        "127.0.0.1",
        "[::1]",
        "::1",
        "localhost",
    ],
)
def test_real_hosts_pass(host: str) -> None:
    assert hostname_problem(host) is None


@pytest.mark.parametrize(
    "handle", ["@someone@mastodon..social", "x@" + "a" * 64 + ".social", "acct:x@xn--zz.social"]
)
def test_a_handle_with_an_impossible_domain_is_none(handle: str) -> None:
    with pytest.raises(ResolveError, match="is not a handle: its domain"):
        parse_handle(handle)


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("alice", ("alice", None)),
        ("@alice", ("alice", None)),
        ("@alice@org.test", ("alice", None)),
        ("alice@SOCIAL.ORG.TEST", ("alice", None)),
        ("acct:alice@org.test", ("alice", None)),
        ("@bob@remote.example", ("bob", "remote.example")),
        ("bob@remote.example:8443", ("bob", "remote.example:8443")),
    ],
)
def test_account_names_short_for_local_ones(name: str, parsed: tuple[str, str | None]) -> None:
    assert parse_account_name(name, LOCAL) == parsed


@pytest.mark.parametrize("name", ["", "@", "al ice", "a/b", "@bob@", "@bob@bad domain"])
def test_what_is_no_account_name(name: str) -> None:
    with pytest.raises(ResolveError):
        parse_account_name(name, LOCAL)
