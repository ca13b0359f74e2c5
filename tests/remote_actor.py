"""A remote server on loopback for tests that run real Herold processes: it serves one actor
(its key inside, as Mastodon does), signs what it delivers, and records what reaches its inbox."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from tests.federation.inbox_peer import MASTODON_CONTEXT, public_pem, sign_cavage, throwaway_key
from tests.processes import free_port, run_herold

AS2 = "application/activity+json"


async def eventually(check: Callable[[], Awaitable[bool] | bool], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        outcome = check()
        if isinstance(outcome, Awaitable):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds} s")
        await asyncio.sleep(0.05)


class Remote:
    """A remote server: serves one actor (its key inside, as Mastodon does) and records its inbox."""

    def __init__(self) -> None:
        self.port = free_port()
        self.actor = f"http://127.0.0.1:{self.port}/users/fan"
        self.key = throwaway_key(1)
        self.received: list[dict[str, Any]] = []

    def document(self) -> dict[str, Any]:
        return {
            "@context": MASTODON_CONTEXT,
            "id": self.actor,
            "type": "Person",
            "preferredUsername": "fan",
            "inbox": f"{self.actor}/inbox",
            "outbox": f"{self.actor}/outbox",
            "followers": f"{self.actor}/followers",
            "publicKey": {
                "id": f"{self.actor}#main-key",
                "owner": self.actor,
                "publicKeyPem": public_pem(self.key),
            },
        }

    async def actor_document(self, _request: web.Request) -> web.Response:
        return web.json_response(self.document(), content_type=AS2)

    async def inbox(self, request: web.Request) -> web.Response:
        self.received.append(json.loads(await request.read()))
        return web.Response(status=202)

    def signed_post(self, url: str, activity: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(activity).encode()
        headers = sign_cavage(
            key=self.key, key_id=f"{self.actor}#main-key", method="post", url=url, body=body
        )
        return body, headers


@pytest.fixture
async def remote() -> AsyncIterator[Remote]:
    state = Remote()
    app = web.Application()
    app.router.add_get("/users/fan", state.actor_document)
    app.router.add_post("/users/fan/inbox", state.inbox)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", state.port).start()
    yield state
    await runner.cleanup()


async def herold(args: list[str], env: dict[str, str]) -> str:
    result = await asyncio.to_thread(run_herold, args, env)
    assert result.returncode == 0, f"herold {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


__all__ = ["Remote", "eventually", "herold", "remote"]
