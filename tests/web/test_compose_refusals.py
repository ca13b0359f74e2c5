"""Writing a post from the web: a typo in a mention is no error, and whatever the server refuses,
the form comes back with what was typed in it."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from tests.lab import DatabaseFactory, Instance
from tests.web.helpers import logged_in

TYPED = "Thanks for the talk! <3 See you at #FOSDEM"
CW = "conference notes"


@pytest.fixture
async def networked(tmp_path: Path, databases: DatabaseFactory) -> AsyncIterator[Instance]:
    """An instance on the real network stack (the lab's routing transport would hide what DNS does)."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        local_domain="real.test",
        https=False,
        database_url=await databases.new_database_url(),
        data_dir=tmp_path / "data",
        secret_key="test-secret-key-of-a-networked-instance",
    )
    app = create_app(settings)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.base_url)
        stack.push_async_callback(client.aclose)
        yield Instance(domain="real.test", app=app, client=client, settings=settings)


def form_text(page: str) -> str:
    match = re.search(r"<textarea[^>]*name=\"text\"[^>]*>(.*?)</textarea>", page, re.S)
    assert match, "the page has no compose form"
    return html.unescape(match.group(1))


@pytest.mark.parametrize(
    "mention", ["@someone@mastodon..social", "@someone@" + "a" * 64 + ".social", "@someone@xn--zz.social"]
)
async def test_a_mention_with_a_typo_is_posted_as_plain_text(networked: Instance, mention: str) -> None:
    alice = await logged_in(networked, "alice")
    try:
        await alice.get("/compose")
        posted = await alice.post("/compose", {"text": f"Thanks {mention}", "author": "alice"})
        assert posted.status_code == 303, posted.text
        page = await alice.get(posted.headers["location"].split("?")[0])
        assert f"Thanks {html.escape(mention)}" in page.text or f"Thanks {mention}" in page.text
        assert 'class="mention' not in page.text
    finally:
        await alice.aclose()


async def test_every_refusal_keeps_what_was_typed(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    try:
        await alice.get("/compose")
        typed = {"text": TYPED, "spoiler_text": CW, "author": "alice", "visibility": "public"}
        for changed, status in (
            ({"author": "somebody-else"}, 403),
            ({"visibility": "everyone-please"}, 400),
            ({"in_reply_to": "987654321"}, 404),
            ({"text": TYPED + "!" * 600}, 400),
            ({"language": "english please"}, 400),
        ):
            answer = await alice.post("/compose", {**typed, **changed})
            assert answer.status_code == status, (changed, answer.status_code)
            assert 'role="alert"' in answer.text, changed
            assert form_text(answer.text) == changed.get("text", TYPED), changed
            assert f'value="{CW}"' in answer.text, changed
    finally:
        await alice.aclose()
