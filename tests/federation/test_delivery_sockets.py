"""Deliveries as production sends them: the worker on Herold's real transport (its own delivery
connections, over loopback sockets) to the independent verifying peer served by uvicorn.

The lab's other delivery tests route requests in-process; this one proves that what goes over a
real socket (request line, Host, Digest, Signature) is what a server written by somebody else
accepts, once per shared inbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.config import Settings
from app.context import AppContext
from app.federation.delivery import delivery_queue
from app.federation.worker import Worker
from app.main import create_app
from app.models import Account, Follow, FollowState
from app.models.base import utcnow
from app.services.accounts import AccountService
from app.services.posting import PostingService
from tests.federation.delivery_peer import Peer
from tests.lab import DatabaseFactory
from tests.processes import free_port


@pytest.fixture
async def herold(tmp_path: Path, databases: DatabaseFactory) -> AsyncIterator[FastAPI]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        local_domain="herold.test",
        https=False,
        data_dir=tmp_path / "data",
        database_url=await databases.new_database_url(),
        secret_key="test-secret-key-of-a-herold-process",
        allowed_private_addresses=[ip_network("127.0.0.0/8")],
        embedded_worker=False,
    )
    app = create_app(settings)  # no transport given: the real, guarded one
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def peer_on_a_socket(herold: FastAPI) -> AsyncIterator[tuple[Peer, int]]:
    # The peer fetches signers' keys from Herold in-process; deliveries reach it over the socket.
    keys = httpx.AsyncClient(transport=httpx.ASGITransport(app=herold), base_url="http://herold.test")
    peer = Peer(client=keys)
    port = free_port("0.0.0.0")
    # On every address: each 127.x.y.z is a host of its own for Herold, all reaching this server.
    server = uvicorn.Server(uvicorn.Config(peer.app, host="0.0.0.0", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield peer, port
    finally:
        server.should_exit = True
        await serving
        await keys.aclose()


async def test_each_shared_inbox_gets_each_post_once_signed_as_a_stranger_checks_it(
    herold: FastAPI, peer_on_a_socket: tuple[Peer, int]
) -> None:
    peer, port = peer_on_a_socket
    context: AppContext = herold.state.context
    alice = (await AccountService(context).create_local_account("alice", password="x" * 16)).account
    # Two followers on each of two hosts (both loopback, one port): one shared inbox per host.
    hosts = [f"127.0.0.2:{port}", f"127.0.0.3:{port}"]
    async with context.sessions() as session:
        for host in hosts:
            for username in ("ann", "ben"):
                uri = f"http://{host}/users/{username}"
                follower = Account(
                    username=username,
                    domain=host,
                    uri=uri,
                    inbox_url=f"{uri}/inbox",
                    shared_inbox_url=f"http://{host}/inbox",
                    fetched_at=utcnow(),
                )
                session.add(follower)
                await session.flush()
                session.add(Follow(follower_id=follower.id, followee_id=alice.id, state=FollowState.ACCEPTED))
        await session.commit()

    worker = Worker(context, [delivery_queue(context)])
    posting = PostingService(context)
    for text in ("First over the wire", "Second, on the same connections"):
        await posting.create(alice, text)
        async with asyncio.timeout(30):
            await worker.run_until_idle()

    assert sorted((item.host, item.path) for item in peer.received) == sorted(
        (host, "/inbox") for host in hosts for _ in range(2)
    )
    for item in peer.received:
        assert item.problems == [], item.problems
        assert item.signer == "http://herold.test/users/alice"
        assert item.activity["type"] == "Create"
        assert item.activity["actor"] == "http://herold.test/users/alice"
    texts = sorted(item.activity["object"]["content"] for item in peer.received)
    assert texts == sorted(
        ["<p>First over the wire</p>"] * 2 + ["<p>Second, on the same connections</p>"] * 2
    )
