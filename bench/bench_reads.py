"""Public reads against `herold serve` as `make run` starts it, beside bare servers in the same run.

    python bench/bench_reads.py [--seconds 5] [--connections 64] [--warm-up 1]

A fresh DATA_DIR on SQLite is migrated and seeded (an account with a profile, 30 public posts, a
pinned one, a thread), then `herold migrate` and `herold serve` run as `make run` runs them, with
their default settings. Each endpoint gets `--connections` keep-alive connections for
`--warm-up` + `--seconds` (the warm-up is not counted):

- actor (AS2), WebFinger, a Note (AS2): what other servers fetch;
- the profile page, a post's page and a public timeline page (the hashtag page: Herold shows
  visitors no other timeline), as a browser that is not logged in asks for them.

Beside each, in the same run: (a) a bare aiohttp server answering the same bytes on the same path,
and (b) a bare FastAPI JSON endpoint on uvicorn (the actor document), which is issue 20's ceiling.
The ratios are the figures that matter (they hardly depend on the machine); req/s, p50/p99 and the
CPU of the client and of the server's process tree are printed with them, so that a client at
its limit or a busy machine shows. On a shared machine, where a server gets what the others leave,
the rates swing from run to run; the CPU each server spends per answer hardly does, and the ratio
of those ("by CPU per answer") is what the rates would be if each server had the cores to itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import LoadResult, build_request, load
from bench.processes import cpu_seconds

AS2 = {"Accept": "application/activity+json"}
JRD = {"Accept": "application/jrd+json"}
BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.9",
}
# Issue 22: share of a bare aiohttp endpoint answering the same bytes, and p99.
GOAL_AP_OF_AIOHTTP = 0.25
GOAL_AP_P99_MS = 20.0
GOAL_HTML_OF_AIOHTTP = 0.10
GOAL_HTML_P99_MS = 50.0
# Issue 20: share of a bare FastAPI JSON endpoint.
GOAL_AP_OF_FASTAPI = 0.40
GOAL_HTML_OF_FASTAPI = 0.20
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    headers: dict[str, str]
    html: bool


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout:.0f} s")


def wait_answering(port: int, timeout: float = 120.0) -> None:
    """Until GET /health answers: `herold serve` binds its socket before its web processes start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"herold on port {port} did not answer /health within {timeout:.0f} s")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (several web processes, the signing child...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for member in process_tree(pid):
        try:
            total += cpu_seconds(member)
        except OSError:
            pass
    return total


def herold_environment(workdir: Path, port: int) -> dict[str, str]:
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "LOCAL_"))},
        "DATA_DIR": str(workdir),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "SECRET_KEY": "bench-secret-key-long-enough-to-sign-things",
    }


def herold_command(name: str) -> str:
    return str(Path(sys.executable).parent / name)


async def seed(workdir: Path, port: int) -> dict[str, str]:
    """alice with a profile, posts, a pin and a thread; returns the paths to read."""
    from app.config import Settings
    from app.context import build_context
    from app.services.accounts import AccountService
    from app.services.posting import PostingService
    from app.services.profile_settings import ProfileChanges, ProfileSettingsService

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=workdir,
        port=port,
        secret_key="bench-secret-key-long-enough-to-sign-things",
    )
    context = build_context(settings, role="command")
    try:
        accounts = AccountService(context)
        await accounts.instance_actor()
        alice = (await accounts.create_local_account("alice", password="benchmark password 1")).account
        bob = (await accounts.create_local_account("bob", password="benchmark password 2")).account
        await ProfileSettingsService(context).update(
            alice.id,
            ProfileChanges(
                display_name="Alice Example",
                bio="Press office of the example organisation. #news",
                fields=[("Website", "https://example.org"), ("Office hours", "Mo-Fr 9-17")],
            ),
        )
        posting = PostingService(context)
        posts = []
        for number in range(30):
            posts.append(
                await posting.create(
                    alice,
                    f"Post number {number} about the #bench, with a link to https://example.org/{number} "
                    "and enough words to look like what people write on a working day.",
                )
            )
        focus = posts[-5]
        await posting.pin(alice, posts[3].id)
        await posting.create(bob, "A reply from a colleague.", in_reply_to=str(focus.id))
        await posting.create(alice, "And an answer to that.", in_reply_to=str(focus.id))
        return {"post_id": str(focus.id)}
    finally:
        await context.aclose()


def fetch(port: int, path: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, answer.headers.get("content-type", ""), answer.read()


def serve_aiohttp(port: int, answers: dict[str, tuple[str, bytes]], ready: Any) -> None:
    """The bare aiohttp ceiling: each path answers its bytes, nothing else happens."""
    from aiohttp import web

    from app.runtime import run_event_loop

    async def main() -> None:
        app = web.Application()
        for path, (content_type, body) in answers.items():

            async def answer(
                _request: web.Request, body: bytes = body, content_type: str = content_type
            ) -> Any:
                return web.Response(body=body, headers={"Content-Type": content_type})

            app.router.add_get(path, answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        ready.set()
        await asyncio.Event().wait()

    run_event_loop(main(), "auto")


def serve_fastapi(port: int, document: dict[str, Any], ready: Any) -> None:
    """The bare FastAPI ceiling (issue 20): one JSON endpoint on uvicorn, configured as `herold serve`."""
    import uvicorn
    from fastapi import FastAPI

    from app.runtime import tune_garbage_collection

    app = FastAPI()

    @app.get("/json")
    async def answer() -> dict[str, Any]:
        return document

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, server_header=False
    )
    tune_garbage_collection()
    ready.set()
    uvicorn.Server(config).run()


def start(target: Any, *args: Any) -> Any:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=target, args=(*args, ready), daemon=True)
    process.start()
    ready.wait(60)
    return process


async def measure(
    port: int, host: str, endpoint: Endpoint, args: argparse.Namespace, server_pid: int | None
) -> tuple[LoadResult, float]:
    request = build_request(host, endpoint.path, endpoint.headers)
    cpu_before = tree_cpu_seconds(server_pid) if server_pid else 0.0
    result = await load(
        port, [request], connections=args.connections, seconds=args.seconds, warm_up=args.warm_up
    )
    cpu = (tree_cpu_seconds(server_pid) - cpu_before) if server_pid else 0.0
    # The warm-up's CPU is in `cpu` too: per second of the whole run.
    return result, cpu / (args.seconds + args.warm_up)


def cpu_per_request_us(result: LoadResult, server_cores: float, args: argparse.Namespace) -> float:
    """The server's CPU per answer (its cores over the whole run, warm-up included, per answer
    counted): unlike the rate, it hardly changes when other work shares the machine."""
    answered = result.rate * (args.seconds + args.warm_up)
    return server_cores * (args.seconds + args.warm_up) / answered * 1e6 if answered else float("nan")


def row(name: str, result: LoadResult, server_cores: float, args: argparse.Namespace) -> str:
    bad = sum(count for status, count in result.statuses.items() if status >= 400) + result.errors
    return (
        f"  {name:<26} {result.rate:9.0f} req/s   p50 {result.percentile(0.5):6.1f} ms   "
        f"p99 {result.percentile(0.99):6.1f} ms   client {result.client_cpu_share * 100:4.0f} %  "
        f"server {server_cores * 100:4.0f} % = {cpu_per_request_us(result, server_cores, args):5.0f} us/answer"
        f"{'   errors ' + str(bad) if bad else ''}"
    )


def verdict(met: bool) -> str:
    return "PASS" if met else "FAIL"


async def run(args: argparse.Namespace) -> bool:
    workdir = Path(tempfile.mkdtemp(prefix="herold-bench-reads-"))
    port, aiohttp_port, fastapi_port = free_port(), free_port(), free_port()
    host = f"localhost:{port}"  # LOCAL_DOMAIN's default
    environment = herold_environment(workdir, port)
    server: subprocess.Popen[bytes] | None = None
    helpers: list[Any] = []
    try:
        # As `make run`: herold migrate, then herold serve with the defaults.
        subprocess.run([herold_command("herold"), "migrate"], env=environment, check=True, cwd=REPO)
        seeded = await seed(workdir, port)
        log = open(workdir / "serve.log", "wb")
        server = subprocess.Popen(
            [herold_command("herold"), "serve"], env=environment, cwd=REPO, stdout=log, stderr=log
        )
        wait_answering(port)
        post = seeded["post_id"]
        endpoints = [
            Endpoint("actor (AS2)", "/users/alice", AS2, html=False),
            Endpoint("WebFinger", f"/.well-known/webfinger?resource=acct:alice@{host}", JRD, html=False),
            Endpoint("Note (AS2)", f"/users/alice/statuses/{post}", AS2, html=False),
            Endpoint("profile page", "/@alice", BROWSER, html=True),
            Endpoint("post page", f"/@alice/{post}", BROWSER, html=True),
            Endpoint("timeline page (#bench)", "/tags/bench", BROWSER, html=True),
        ]
        answers: dict[str, tuple[str, bytes]] = {}
        for endpoint in endpoints:
            status, content_type, body = fetch(port, endpoint.path, endpoint.headers)
            if status != 200:
                raise SystemExit(f"{endpoint.name}: {endpoint.path} answered {status}")
            answers[endpoint.path.split("?", 1)[0]] = (content_type, body)
        actor = json.loads(answers["/users/alice"][1])
        helpers.append(start(serve_aiohttp, aiohttp_port, answers))
        helpers.append(start(serve_fastapi, fastapi_port, actor))
        wait_listening(aiohttp_port)
        wait_listening(fastapi_port)

        print(
            f"{args.connections} keep-alive connections, {args.warm_up:g} s warm-up + {args.seconds:g} s "
            f"per endpoint; load average {', '.join(f'{value:.2f}' for value in os.getloadavg())}"
        )
        ceiling, ceiling_cores = await measure(
            fastapi_port, "127.0.0.1", Endpoint("FastAPI", "/json", AS2, False), args, helpers[1].pid
        )
        print(row("bare FastAPI JSON (actor)", ceiling, ceiling_cores, args))
        passed = True
        for endpoint in endpoints:
            herold, herold_cores = await measure(port, host, endpoint, args, server.pid)
            bare, bare_cores = await measure(aiohttp_port, host, endpoint, args, helpers[0].pid)
            print(f"{endpoint.name}")
            print(row("herold serve", herold, herold_cores, args))
            print(row("bare aiohttp, same bytes", bare, bare_cores, args))
            of_aiohttp = herold.rate / bare.rate if bare.rate else 0.0
            of_fastapi = herold.rate / ceiling.rate if ceiling.rate else 0.0
            p99 = herold.percentile(0.99)
            bad = sum(count for status, count in herold.statuses.items() if status >= 400) + herold.errors
            if endpoint.html:
                goal22 = of_aiohttp >= GOAL_HTML_OF_AIOHTTP and p99 <= GOAL_HTML_P99_MS and not bad
                goal20 = of_fastapi >= GOAL_HTML_OF_FASTAPI and not bad
                wanted22 = f">= {GOAL_HTML_OF_AIOHTTP:.0%}, p99 <= {GOAL_HTML_P99_MS:.0f} ms"
                wanted20 = f">= {GOAL_HTML_OF_FASTAPI:.0%}"
            else:
                goal22 = of_aiohttp >= GOAL_AP_OF_AIOHTTP and p99 <= GOAL_AP_P99_MS and not bad
                goal20 = of_fastapi >= GOAL_AP_OF_FASTAPI and p99 <= GOAL_AP_P99_MS and not bad
                wanted22 = f">= {GOAL_AP_OF_AIOHTTP:.0%}, p99 <= {GOAL_AP_P99_MS:.0f} ms"
                wanted20 = f">= {GOAL_AP_OF_FASTAPI:.0%}, p99 <= {GOAL_AP_P99_MS:.0f} ms"
            by_cpu_aiohttp = cpu_per_request_us(bare, bare_cores, args) / cpu_per_request_us(
                herold, herold_cores, args
            )
            by_cpu_fastapi = cpu_per_request_us(ceiling, ceiling_cores, args) / cpu_per_request_us(
                herold, herold_cores, args
            )
            print(
                f"  by CPU per answer (what the rates would be with a core each): {by_cpu_aiohttp:6.1%} "
                f"of aiohttp, {by_cpu_fastapi:6.1%} of FastAPI"
            )
            print(
                f"  = {of_aiohttp:6.1%} of aiohttp (issue 22: {wanted22}) {verdict(goal22)};"
                f"  {of_fastapi:6.1%} of FastAPI (issue 20: {wanted20}) {verdict(goal20)}"
            )
            passed = passed and goal22 and goal20
        print(f"load average after: {', '.join(f'{value:.2f}' for value in os.getloadavg())}")
        return passed
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        for helper in helpers:
            helper.terminate()
            helper.join(10)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warm-up", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--short", action="store_true", help="2 s per endpoint after 0.5 s of warm-up")
    args = parser.parse_args(argv)
    if args.short:
        args.seconds, args.warm_up = 2.0, 0.5
    from app.runtime import run_event_loop

    passed = run_event_loop(run(args), "auto")
    print("reads:", verdict(passed))
    if not passed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
