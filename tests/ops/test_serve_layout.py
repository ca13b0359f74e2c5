"""`herold serve` as `make run` starts it, on two cores: two web processes on one socket, the
worker in a process of its own, and events between all of them (app.ops.supervisor,
app.ops.event_channel), with real processes, a real remote server and the real CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx

from app.config import Settings
from app.context import build_context
from app.models import NotificationType
from app.services.events import Event, NotificationAdded, PostDeleted
from tests.lab import DatabaseFactory
from tests.processes import ServerProcess, free_port, herold_env
from tests.remote_actor import Remote, eventually, herold, remote

__all__ = ["remote"]  # the fixture, used by name below

AS2 = "application/activity+json"


def children_of(pid: int) -> dict[int, str]:
    """The live child processes of `pid`, with their command lines (from /proc: Linux)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if int(parent) == pid and state != "Z":
            found[int(entry.name)] = command
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def next_notification(stream: httpx.Response) -> dict[str, Any]:
    """The payload of the next `notification` event of a Server-Sent Events stream."""
    event = None
    async for line in stream.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "notification":
            payload: dict[str, Any] = json.loads(line[6:])
            return payload
    raise EOFError("the stream ended")


def web_and_worker(supervisor: int) -> tuple[list[int], list[int]]:
    children = children_of(supervisor)
    web_processes = sorted(pid for pid, command in children.items() if "--child web" in command)
    workers = sorted(pid for pid, command in children.items() if "--child worker" in command)
    return web_processes, workers


async def test_serve_runs_web_processes_and_a_worker_process_and_leaves_no_child(
    tmp_path: Path, databases: DatabaseFactory, remote: Remote
) -> None:
    port = free_port()
    domain = f"127.0.0.1:{port}"
    base = f"http://{domain}"
    database_url = await databases.new_database_url()
    env = herold_env(
        tmp_path / "data",
        database_url,
        PORT=str(port),
        LOCAL_DOMAIN=domain,
        HTTPS="false",
        ALLOWED_PRIVATE_ADDRESSES="127.0.0.0/8",
        WEB_PROCESSES="2",
    )
    server = ServerProcess(["serve"], env, tmp_path / "serve.log")
    # This test's own process listens to the instance's events as a third web process would.
    listener = build_context(
        Settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url, local_domain=domain),  # type: ignore[call-arg]
        role="command",
    )
    heard: list[Event] = []
    listener.events.subscribe(heard.append)
    supervisor = server.process.pid
    try:
        server.wait_http(f"{base}/health")
        await eventually(
            lambda: web_and_worker(supervisor) != ([], []) and len(web_and_worker(supervisor)[0]) == 2,
            "two web processes",
        )
        web_processes, workers = web_and_worker(supervisor)
        assert len(workers) == 1
        await listener.open_channel("web")
        # Every web process started, and the setup line was printed once, with the one token they all accept.
        await eventually(lambda: server.output().count("Application startup complete") == 2, "both started")
        assert server.output().count("create the first administrator with setup token") == 1

        await herold(["accounts", "create", "alice", "--password", "correct horse battery staple"], env)
        token = (await herold(["tokens", "create", "alice"], env)).strip().splitlines()[-1]

        # Each web process answers alone (the other stopped), and sees what the other wrote.
        first, second = web_processes
        os.kill(second, signal.SIGSTOP)
        try:
            async with httpx.AsyncClient(base_url=base, timeout=20) as client:
                posted = await client.post(
                    "/api/v1/statuses",
                    data={"status": "written through one web process"},
                    headers={"Authorization": f"Bearer {token}"},
                )
            assert posted.status_code == 200, posted.text
        finally:
            os.kill(second, signal.SIGCONT)
        post_uri = posted.json()["uri"]
        os.kill(first, signal.SIGSTOP)
        try:
            async with httpx.AsyncClient(timeout=20) as client:
                note = await client.get(post_uri, headers={"Accept": AS2})
            assert note.status_code == 200
            assert "written through one web process" in note.json()["content"]
        finally:
            os.kill(first, signal.SIGCONT)

        # The worker process handles what the inbox accepted: it accepts the follow (a delivery
        # to the remote) and notifies alice, which this process hears from it, and so does
        # alice's streaming connection, whichever web process it reached.
        async with httpx.AsyncClient(base_url=base, timeout=20) as streaming_client:
            async with streaming_client.stream(
                "GET", "/api/v1/streaming/user", headers={"Authorization": f"Bearer {token}"}
            ) as stream:
                assert stream.status_code == 200
                inbox_url = f"{base}/users/alice/inbox"
                follow = {
                    "@context": "https://www.w3.org/ns/activitystreams",
                    "id": f"{remote.actor}#follows/1",
                    "type": "Follow",
                    "actor": remote.actor,
                    "object": f"{base}/users/alice",
                }
                body, headers = remote.signed_post(inbox_url, follow)
                async with httpx.AsyncClient(timeout=20) as client:
                    accepted = await client.post(inbox_url, content=body, headers=headers)
                assert accepted.status_code == 202, accepted.text
                streamed = await asyncio.wait_for(next_notification(stream), 30)
        assert streamed["type"] == "follow" and streamed["account"]["url"] == remote.actor
        await eventually(lambda: any(item.get("type") == "Accept" for item in remote.received), "the Accept")
        await eventually(
            lambda: any(
                isinstance(event, NotificationAdded) and event.kind == NotificationType.FOLLOW
                for event in heard
            ),
            "the follow notification from the worker process",
            seconds=2.0,
        )

        # The CLI is a process of the instance too: its deletion reaches this one within 2 s.
        await herold(["delete-post", "alice", post_uri], env)
        await eventually(
            lambda: any(isinstance(event, PostDeleted) for event in heard), "the deletion", seconds=2.0
        )

        # A web process that dies is started again; the other answers meanwhile.
        os.kill(first, signal.SIGKILL)
        await eventually(
            lambda: len(web_and_worker(supervisor)[0]) == 2 and first not in web_and_worker(supervisor)[0],
            "a new web process",
        )
        assert httpx.get(f"{base}/health", timeout=10).status_code == 200
        # Read from the supervisor's output as it comes: the line may still be on its way.
        await eventually(
            lambda: "was killed by SIGKILL; starting it again" in server.output(), "the supervisor's message"
        )

        # Killed outright, the supervisor leaves no process behind: each child (and the worker's
        # signing process) sees its lifeline close and stops.
        web_processes, workers = web_and_worker(supervisor)
        descendants = [*web_processes, *workers, *children_of(workers[0])]
        os.kill(supervisor, signal.SIGKILL)
        server.process.wait(timeout=10)
        await eventually(lambda: not any(alive(pid) for pid in descendants), "every child gone", seconds=30.0)
    finally:
        await listener.aclose()
        server.stop()
        for pid in children_of(supervisor):
            os.kill(pid, signal.SIGKILL)
    assert "Traceback" not in server.output(), server.output()
