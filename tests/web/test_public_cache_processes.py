"""The public cache across `herold serve`'s web processes: an edit and a delete made through one
process are seen by the very next anonymous GET, whichever process answers it (real processes)."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.lab import DatabaseFactory
from tests.ops.test_serve_layout import web_and_worker
from tests.processes import ServerProcess, free_port, herold_env
from tests.remote_actor import eventually, herold

AS2 = {"Accept": "application/activity+json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
PASSWORD = "correct horse battery staple"


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    """`pid` answers nothing meanwhile (the other web process takes every connection)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def read_anonymously(base: str, paths: dict[str, dict[str, str]]) -> dict[str, httpx.Response]:
    # A fresh client each time: a new connection, accepted by whichever process is running.
    async with httpx.AsyncClient(base_url=base, timeout=20) as client:
        return {path: await client.get(path, headers=headers) for path, headers in paths.items()}


async def test_an_edit_and_a_delete_through_one_process_are_seen_by_the_other_at_once(
    tmp_path: Path, databases: DatabaseFactory
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = herold_env(
        tmp_path / "data",
        await databases.new_database_url(),
        PORT=str(port),
        LOCAL_DOMAIN=f"127.0.0.1:{port}",
        HTTPS="false",
        WEB_PROCESSES="2",
    )
    server = ServerProcess(["serve"], env, tmp_path / "serve.log")
    supervisor = server.process.pid
    try:
        server.wait_http(f"{base}/health")
        await eventually(lambda: len(web_and_worker(supervisor)[0]) == 2, "two web processes")
        await eventually(lambda: server.output().count("Application startup complete") == 2, "both started")
        first, second = web_and_worker(supervisor)[0]
        await herold(["accounts", "create", "alice", "--password", PASSWORD], env)
        token = (await herold(["tokens", "create", "alice"], env)).strip().splitlines()[-1]
        async with httpx.AsyncClient(base_url=base, timeout=20) as api:
            posted = await api.post(
                "/api/v1/statuses",
                data={"status": "The first version"},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert posted.status_code == 200, posted.text
        post_id = posted.json()["id"]
        paths = {
            f"/users/alice/statuses/{post_id}": AS2,
            f"/@alice/{post_id}": BROWSER,
            "/@alice": BROWSER,
            "/users/alice/outbox?page=1": AS2,
        }
        # Both processes keep every document (each read twice: the second is from memory).
        for paused in (second, first):
            with stopped(paused):
                for _ in range(2):
                    for path, answer in (await read_anonymously(base, paths)).items():
                        assert answer.status_code == 200 and "The first version" in answer.text, path

        # The edit goes through the first process; the second answers next, straight away.
        browser = httpx.AsyncClient(base_url=base, timeout=20, headers=BROWSER)
        try:
            with stopped(second):
                login = await browser.get("/login")
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
                assert csrf
                logged_in = await browser.post(
                    "/login", data={"csrf_token": csrf.group(1), "username": "alice", "password": PASSWORD}
                )
                assert logged_in.status_code == 303, logged_in.text
                form = await browser.get(f"/posts/{post_id}/edit")
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
                assert csrf
                edited = await browser.post(
                    f"/posts/{post_id}/edit",
                    data={"csrf_token": csrf.group(1), "text": "The corrected version"},
                )
                assert edited.status_code == 303, edited.text
        finally:
            await browser.aclose()
        with stopped(first):
            for path, answer in (await read_anonymously(base, paths)).items():
                assert answer.status_code == 200, path
                assert "The first version" not in answer.text and "The corrected version" in answer.text, path

        # The delete goes through the second process (the client API); the first answers next.
        with stopped(first):
            async with httpx.AsyncClient(base_url=base, timeout=20) as api:
                deleted = await api.delete(
                    f"/api/v1/statuses/{post_id}", headers={"Authorization": f"Bearer {token}"}
                )
            assert deleted.status_code == 200, deleted.text
        with stopped(second):
            seen = await read_anonymously(base, paths)
        assert seen[f"/users/alice/statuses/{post_id}"].status_code == 410
        assert seen[f"/@alice/{post_id}"].status_code == 404
        for path in ("/@alice", "/users/alice/outbox?page=1"):
            assert seen[path].status_code == 200 and "The corrected version" not in seen[path].text, path
    finally:
        server.stop()
    assert "Traceback" not in server.output(), server.output()
