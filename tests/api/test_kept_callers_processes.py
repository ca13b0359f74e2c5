"""A token resolved and kept by one web process dies there at once when another process of the
instance revokes it or changes its person (app.services.kept_callers), with real processes:
`herold serve` with two web processes, and this test's own process acting as the CLI does."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
from sqlmodel import select

from app.config import Settings
from app.context import AppContext, build_context
from app.models import OAuthAccessToken, User
from app.services.oauth import OAuthService, secret_hash
from app.services.staff import StaffService
from tests.lab import DatabaseFactory
from tests.ops.test_serve_layout import web_and_worker
from tests.processes import ServerProcess, free_port, herold_env
from tests.remote_actor import eventually, herold


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    """`pid` frozen (SIGSTOP): the kernel hands every connection to the other web process."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@asynccontextmanager
async def command_process(data_dir: Path, database_url: str, domain: str) -> AsyncIterator[AppContext]:
    """This test's process as a process of the instance, as `herold` commands are: what it
    commits reaches the web processes through the event channel."""
    context = build_context(
        Settings(_env_file=None, data_dir=data_dir, database_url=database_url, local_domain=domain),  # type: ignore[call-arg]
        role="command",
    )
    await context.open_channel("command")
    try:
        yield context
    finally:
        await context.aclose()


async def test_a_revoked_token_or_a_disabled_login_is_refused_at_once_by_the_process_that_kept_it(
    tmp_path: Path, databases: DatabaseFactory
) -> None:
    port = free_port()
    domain = f"127.0.0.1:{port}"
    base = f"http://{domain}"
    data_dir = tmp_path / "data"
    database_url = await databases.new_database_url()
    env = herold_env(
        data_dir, database_url, PORT=str(port), LOCAL_DOMAIN=domain, HTTPS="false", WEB_PROCESSES="2"
    )
    server = ServerProcess(["serve"], env, tmp_path / "serve.log")
    supervisor = server.process.pid
    try:
        server.wait_http(f"{base}/health")
        await eventually(lambda: len(web_and_worker(supervisor)[0]) == 2, "two web processes")
        await eventually(lambda: server.output().count("Application startup complete") == 2, "both started")
        first, second = web_and_worker(supervisor)[0]
        await herold(
            ["accounts", "create", "alice", "--role", "admin", "--password", "correct horse battery staple"],
            env,
        )
        await herold(["accounts", "create", "bob", "--password", "correct horse battery staple"], env)
        alice = (await herold(["tokens", "create", "alice"], env)).strip().splitlines()[-1]
        bob = (await herold(["tokens", "create", "bob"], env)).strip().splitlines()[-1]

        async with httpx.AsyncClient(base_url=base, timeout=20) as client:

            async def answer(token: str) -> int:
                got = await client.get("/api/v1/timelines/home", headers={"Authorization": f"Bearer {token}"})
                return got.status_code

            # The second web process resolves both tokens and keeps them.
            with stopped(first):
                assert await answer(alice) == 200
                assert await answer(alice) == 200
                assert await answer(bob) == 200

            # Revoked by another process of the instance (the second one frozen meanwhile, so its
            # events wait in its socket or connection): refused at its very next request.
            with stopped(second):
                async with command_process(data_dir, database_url, domain) as context:
                    async with context.sessions() as session:
                        token = (
                            await session.scalars(
                                select(OAuthAccessToken).where(
                                    OAuthAccessToken.token_hash == secret_hash(alice)
                                )
                            )
                        ).one()
                    await OAuthService(context).revoke_app_for_user(token.user_id or 0, token.application_id)
            with stopped(first):
                assert await answer(alice) == 401
                assert await answer(bob) == 200

            # A login disabled by an administrator (in another process): its tokens die at once.
            with stopped(second):
                async with command_process(data_dir, database_url, domain) as context:
                    async with context.sessions() as session:
                        admin = await session.get(User, token.user_id)
                        user = (await session.scalars(select(User).where(User.id != token.user_id))).one()
                    assert admin is not None
                    await StaffService(context).set_disabled(user.id, True, by=admin)
            with stopped(first):
                assert await answer(bob) == 401
    finally:
        server.stop()
    assert "Traceback" not in server.output(), server.output()
