"""Search says why another server's account could not be shown, in words, in the reader's language."""

from __future__ import annotations

import pytest

from app.activitypub.resolver import ActorResolver, ResolveError
from tests.lab import Lab
from tests.web.helpers import logged_in, make_user


@pytest.mark.parametrize(
    ("language", "unreachable", "missing"),
    [
        ("en", "unknown.test could not be reached.", "@nobody@b.test does not exist."),
        ("de", "unknown.test war nicht erreichbar.", "@nobody@b.test gibt es nicht."),
    ],
)
async def test_search_says_a_server_could_not_be_reached_not_the_librarys_words(
    lab: Lab, language: str, unreachable: str, missing: str
) -> None:
    here = await lab.instance("a.test")
    elsewhere = await lab.instance("b.test")
    await make_user(elsewhere, "bob")
    alice = await logged_in(here, "alice")
    headers = {"Accept-Language": language}
    for query in ("@someone@unknown.test", "http://unknown.test/users/someone"):
        page = await alice.get("/search", params={"q": query}, headers=headers)
        assert page.status_code == 404
        assert unreachable in page.text
        # The lab's transport says "no lab host", aiohttp "Cannot connect to host …": neither shows.
        assert "no lab host" not in page.text and "could not fetch" not in page.text
    page = await alice.get("/search", params={"q": "@nobody@b.test"}, headers=headers)
    assert page.status_code == 404 and missing in page.text


async def test_the_resolver_says_which_host_could_not_be_reached(lab: Lab) -> None:
    here = await lab.instance("a.test")
    with pytest.raises(ResolveError) as refused:
        await ActorResolver(here.context).resolve("@someone@unknown.test")
    assert str(refused.value) == "unknown.test could not be reached"
    assert refused.value.unreachable == "unknown.test"
