"""What a newcomer gets from `make run`: migrate, then a real server process on a real socket."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.lab import DatabaseFactory
from tests.processes import ServerProcess, free_port, herold_env, run_herold


async def test_migrate_then_serve_answers_discovery_on_a_socket(
    tmp_path: Path, databases: DatabaseFactory
) -> None:
    port = free_port()
    domain = f"localhost:{port}"  # the default LOCAL_DOMAIN
    # A brand-new database: `herold migrate` must create the schema itself.
    database_url = (
        f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        if not databases.postgres_url
        else await databases.new_empty_database_url()
    )
    env = herold_env(tmp_path / "data", database_url, PORT=str(port))
    migrated = run_herold(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert run_herold(["accounts", "create", "knnktv", "--organization"], env).returncode == 0

    server = ServerProcess(["serve"], env, tmp_path / "serve.log")
    try:
        base = f"http://{domain}"
        server.wait_http(f"{base}/.well-known/nodeinfo")
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            finger = await client.get("/.well-known/webfinger", params={"resource": f"acct:knnktv@{domain}"})
            assert finger.status_code == 200
            self_link = next(link for link in finger.json()["links"] if link["rel"] == "self")
            assert self_link["href"] == f"{base}/users/knnktv"

            for accept in (
                "application/activity+json",
                'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
            ):
                actor = await client.get("/users/knnktv", headers={"Accept": accept})
                assert actor.status_code == 200
                assert actor.headers["content-type"].startswith("application/activity+json")
                assert actor.json()["id"] == f"{base}/users/knnktv"
                assert actor.json()["type"] == "Organization"

            links = (await client.get("/.well-known/nodeinfo")).json()["links"]
            nodeinfo = (await client.get(links[-1]["href"])).json()
            assert nodeinfo["software"]["name"] == "herold"
            assert nodeinfo["usage"]["users"]["total"] == 1

            host_meta = await client.get("/.well-known/host-meta")
            assert f"{base}/.well-known/webfinger?resource={{uri}}" in host_meta.text
    finally:
        server.stop()
    assert "Traceback" not in server.output()
