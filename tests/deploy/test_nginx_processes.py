"""The production setup run for real: nginx with deploy/nginx/herold.conf (TLS from a CA made here)
in front of two `herold serve` and two `herold worker` processes on one PostgreSQL database, with
handles on a main domain (LOCAL_DOMAIN ≠ WEB_DOMAIN), and a second Herold as the remote peer.

Loopback only, no name resolution: the domains are addresses with nginx's port (127.0.0.2 is the
main domain, 127.0.0.3 Herold's web domain, 127.0.0.5 the peer), each with a certificate for its
address. The peer sits behind the same nginx in a server block of its own (test scaffolding, not
the shipped site). Both Herolds trust the test CA through EXTRA_CA_CERTIFICATES.
"""

from __future__ import annotations

import asyncio
import sqlite3
import ssl
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from sqlalchemy import func
from sqlmodel import col, select

from app.config import Settings
from app.context import build_context
from app.models import Account, DeliveryJob, FollowState, JobState
from tests.certificates import TestAuthority
from tests.deploy.site import LOCAL_DOMAIN, WEB_DOMAIN, SiteValues, nginx_main_config, templated_site
from tests.deploy.test_deploy_files import NGINX
from tests.federation.delivery_helpers import add_sink_followers
from tests.lab import DatabaseFactory
from tests.processes import ServerProcess, free_port, herold_env, run_herold

MAIN, WEB, PEER = "127.0.0.2", "127.0.0.3", "127.0.0.5"
SINK_HOSTS = 40  # followers on other servers, beside the peer: the fan-out to kill processes in
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (Debian: apt-get install nginx)"
)


async def eventually(check: object, *, seconds: float = 120.0, every: float = 0.3) -> None:
    deadline = time.monotonic() + seconds
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{check} did not happen within {seconds} s")
        await asyncio.sleep(every)


async def herold(args: list[str], env: dict[str, str]) -> str:
    result = await asyncio.to_thread(run_herold, args, env, timeout=120)
    assert result.returncode == 0, f"herold {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


class Sink:
    """Followers' inboxes on SINK_HOSTS loopback addresses; every other answer comes late, so the
    fan-out is still going when processes are killed."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.port = 0


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    state = Sink()

    async def inbox(request: web.Request) -> web.Response:
        await request.read()
        host = request.headers.get("Host", "")
        if int(host.split(":")[0].rsplit(".", 1)[1]) % 2:
            await asyncio.sleep(1.5)
        state.received[host] += 1
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/inbox", inbox)
    runner = web.AppRunner(app)
    await runner.setup()
    state.port = free_port("127.0.1.1")
    for number in range(SINK_HOSTS):
        await web.TCPSite(runner, f"127.0.1.{number + 1}", state.port).start()
    yield state
    await runner.cleanup()


def peer_block(listen: str, certificate: tuple[Path, Path], upstream: int) -> str:
    return f"""
server {{
    listen {listen} ssl;
    server_name {PEER};
    ssl_certificate {certificate[0]};
    ssl_certificate_key {certificate[1]};
    location / {{
        proxy_pass http://127.0.0.1:{upstream};
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }}
}}
"""


async def test_nginx_in_front_of_two_web_and_two_worker_processes(
    tmp_path: Path, databases: DatabaseFactory, sink: Sink
) -> None:
    if not databases.postgres_url:
        pytest.skip("several web and worker processes on one database: PostgreSQL only")
    assert NGINX is not None
    authority = TestAuthority(tmp_path / "pki")
    https_port = free_port(MAIN)
    http_port = free_port(MAIN)
    local_domain, web_domain, peer_domain = (f"{address}:{https_port}" for address in (MAIN, WEB, PEER))
    web_ports = [free_port(), free_port()]
    peer_port = free_port()
    certificates = {name: authority.issue(name) for name in (MAIN, WEB, PEER)}
    site = templated_site(
        SiteValues(
            local_domain=local_domain,
            web_domain=web_domain,
            https_listen_local=f"{MAIN}:{https_port}",
            https_listen_web=f"{WEB}:{https_port}",
            http_listen=f"{MAIN}:{http_port}",
            upstreams=web_ports,
            local_certificate=(certificates[MAIN].certificate, certificates[MAIN].key),
            web_certificate=(certificates[WEB].certificate, certificates[WEB].key),
        )
    )
    assert LOCAL_DOMAIN not in site and WEB_DOMAIN not in site
    site += peer_block(
        f"{PEER}:{https_port}", (certificates[PEER].certificate, certificates[PEER].key), peer_port
    )
    config = nginx_main_config(tmp_path / "nginx", site)

    common = {
        "HTTPS": "true",
        "ALLOWED_PRIVATE_ADDRESSES": "127.0.0.0/8",
        "EXTRA_CA_CERTIFICATES": str(authority.ca_file),
        "LOG_LEVEL": "warning",
    }
    database_url = await databases.new_database_url()
    main_env = herold_env(
        tmp_path / "main",
        database_url,
        LOCAL_DOMAIN=local_domain,
        WEB_DOMAIN=web_domain,
        # As deploy/systemd/herold-web@.service runs them: one process per unit.
        EMBEDDED_WORKER="false",
        WEB_PROCESSES="1",
        **common,
    )
    peer_env = herold_env(
        tmp_path / "peer",
        f"sqlite+aiosqlite:///{tmp_path / 'peer.db'}",
        LOCAL_DOMAIN=peer_domain,
        PORT=str(peer_port),
        **common,
    )
    for args, env in ((["migrate"], peer_env), (["accounts", "create", "alice"], main_env)):
        await herold(args, env)
    await herold(["accounts", "create", "bob"], peer_env)

    processes: list[ServerProcess] = []

    def start(args: list[str], env: dict[str, str], log: str) -> ServerProcess:
        process = ServerProcess(args, env, tmp_path / log)
        processes.append(process)
        return process

    nginx = subprocess.Popen(
        [
            NGINX,
            "-p",
            str(tmp_path / "nginx"),
            "-c",
            str(config),
            "-e",
            str(tmp_path / "nginx" / "error.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        webs = [start(["serve", "--port", str(port)], main_env, f"web-{port}.log") for port in web_ports]
        workers = [start(["worker"], main_env, f"worker-{n}.log") for n in (1, 2)]
        peer = start(["serve"], peer_env, "peer.log")
        for process, port in ((webs[0], web_ports[0]), (webs[1], web_ports[1]), (peer, peer_port)):
            process.wait_http(f"http://127.0.0.1:{port}/health")

        async with httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=authority.ca_file), timeout=20
        ) as client:
            # Through nginx: the bare domain redirects discovery to Herold's host, which resolves it.
            resource = f"acct:alice@{local_domain}"
            redirect = await client.get(
                f"https://{local_domain}/.well-known/webfinger", params={"resource": resource}
            )
            assert redirect.status_code == 301
            assert redirect.headers["location"].startswith(f"https://{web_domain}/.well-known/webfinger?")
            finger = await client.get(redirect.headers["location"])
            assert finger.status_code == 200
            assert finger.json()["subject"] == resource
            self_link = next(link for link in finger.json()["links"] if link["rel"] == "self")
            assert self_link["href"] == f"https://{web_domain}/users/alice"
            plain = await client.get(f"http://{MAIN}:{http_port}/about")
            assert plain.status_code == 301
            assert plain.headers["location"] == f"https://{MAIN}/about"
            ready = await client.get(f"https://{web_domain}/health/ready")
            assert ready.status_code == 200, ready.text

            # The peer follows through nginx and gets the Accept.
            await herold(["follow", "bob", f"@alice@{local_domain}"], peer_env)

            def peer_follow_state() -> list[str]:
                with sqlite3.connect(tmp_path / "peer.db") as peer_db:
                    return [row[0] for row in peer_db.execute("SELECT state FROM follow")]

            async def accepted() -> bool:
                return peer_follow_state() == [FollowState.ACCEPTED]

            await eventually(accepted)

            # Many more followers, on the sink's hosts: the fan-out to kill processes in.
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None,
                local_domain=local_domain,
                web_domain=web_domain,
                https=True,
                data_dir=tmp_path / "main",
                database_url=database_url,
                secret_key="test-secret-key-of-an-ops-test-instance",
            )
            context = build_context(settings)
            try:
                hosts = [f"127.0.1.{number + 1}:{sink.port}" for number in range(SINK_HOSTS)]
                async with context.sessions() as session:
                    alice = (
                        await session.scalars(
                            select(Account).where(Account.username == "alice", col(Account.domain).is_(None))
                        )
                    ).one()
                    add_sink_followers(session, alice.id, hosts)
                    await session.commit()

                async def count(*conditions: object) -> int:
                    async with context.sessions() as session:
                        found = await session.scalar(
                            select(func.count()).select_from(DeliveryJob).where(*conditions)
                        )
                    return int(found or 0)

                post_uri = (
                    (await herold(["post", "alice", "Through nginx, to everyone"], main_env))
                    .strip()
                    .splitlines()[-1]
                )
                assert post_uri.startswith(f"https://{web_domain}/")

                async def midway() -> bool:
                    return await count(col(DeliveryJob.state) == JobState.DONE) >= SINK_HOSTS // 3

                await eventually(midway, every=0.05)
                # kill -9 of one web and one worker process mid fan-out.
                for victim in (webs[0], workers[0]):
                    victim.process.kill()
                    victim.process.wait()
                assert await count(col(DeliveryJob.state) != JobState.DONE) > 0, (
                    "too late: nothing left in flight"
                )

                # nginx sends everything to the web process that is left; nothing fails.
                for _ in range(10):
                    answer = await client.get(
                        f"https://{web_domain}/users/alice", headers={"Accept": "application/activity+json"}
                    )
                    assert answer.status_code == 200

                # The surviving worker takes over the killed one's leases (its process is gone: the
                # takeover sees that within seconds, app.federation.takeover), not after the leases'
                # 2 minutes. Leases are not moved into the past here: that would also hand the
                # surviving worker's own deliveries in flight to a second claim, a repeat the server
                # itself never makes.
                killed_at = time.monotonic()

                async def finished() -> bool:
                    return await count(col(DeliveryJob.state) != JobState.DONE) == 0

                await eventually(finished, seconds=60.0)
                assert time.monotonic() - killed_at < 30.0, (
                    "the killed worker's deliveries were taken over late"
                )
            finally:
                await context.aclose()

            def peer_copies() -> int:
                with sqlite3.connect(tmp_path / "peer.db") as peer_db:
                    return int(
                        peer_db.execute("SELECT count(*) FROM post WHERE uri = ?", (post_uri,)).fetchone()[0]
                    )

            async def arrived() -> bool:
                return peer_copies() >= 1

            await eventually(arrived)
        assert peer_copies() == 1, "the peer has the post exactly once"
        assert set(sink.received) == set(hosts), "every follower's server received the post"
        # At-least-once: deliveries the killed worker made but had not recorded are sent again.
        # With 40 fast inboxes that can be every one of them once, so only a second repeat is a fault; the
        # bound on repeats is pinned by tests/federation/test_takeover.py's 300-inbox fan-out.
        assert max(sink.received.values()) <= 2, "no inbox got the post more than twice"
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        for process in processes:
            process.stop()
    for process in processes[1:]:
        if process is not workers[0]:
            assert "Traceback" not in process.output(), process.output()
