"""Client CPU per request: raw aiohttp, httpx's default transport, and Herold's transport.

    python bench/bench_http_client.py [--requests 2000] [--concurrency 10] [--rounds 3] [--uvloop]

A minimal HTTP server answering 202 runs in a separate process, so only the client's CPU is
counted (time.process_time covers this process alone). Each client POSTs a ~1.5 KB JSON
activity, the shape of a delivery. The best of several rounds is reported, because noise on a
shared machine only ever adds time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import ip_network
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.activitypub.transport import build_client, build_transport, post_bytes
from app.runtime import run_event_loop
from bench.sink import Sink

GOAL = 1.5
WARM_UP = 200
HEADERS = {"Content-Type": "application/activity+json"}

Send = Callable[[], Awaitable[None]]


def _serve(ready: Connection) -> None:
    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Sink, "127.0.0.1", 0, backlog=1024)
        ready.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(serve())


def _body() -> bytes:
    note: dict[str, object] = {
        "id": "https://herold.example/notes/0b6f1c2e",
        "type": "Note",
        "attributedTo": "https://herold.example/users/alice",
        "content": "",
    }
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://herold.example/activities/0b6f1c2e-8d43-4a4e-9a71-3f6e2d1c9b80",
        "type": "Create",
        "actor": "https://herold.example/users/alice",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": ["https://herold.example/users/alice/followers"],
        "object": note,
    }
    padding = 1500 - len(json.dumps(activity))
    note["content"] = "<p>" + "lorem ipsum " * (padding // 12) + "</p>"
    return json.dumps(activity).encode()


@dataclass
class Result:
    name: str
    send: Send
    cpu_s: float = float("inf")
    wall_s: float = float("inf")

    def cpu_ms_per_request(self, requests: int) -> float:
        return self.cpu_s / requests * 1000


async def _drive(send: Send, requests: int, concurrency: int) -> None:
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            await send()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _bench(port: int, args: argparse.Namespace) -> list[Result]:
    url = f"http://127.0.0.1:{port}/inbox"
    body = _body()

    # Same pool limits as build_transport's defaults, so only the layers above the pool differ.
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200, limit_per_host=4))
    default_client = httpx.AsyncClient()
    ours = build_client(
        transport=build_transport(allowed_private=[ip_network("127.0.0.0/8")]), user_agent="herold-bench/1"
    )

    async def send_aiohttp() -> None:
        async with session.post(url, data=body, headers=HEADERS) as response:
            await response.read()
            assert response.status == 202

    async def send_httpx() -> None:
        response = await default_client.post(url, content=body, headers=HEADERS)
        assert response.status_code == 202

    async def send_ours() -> None:
        response = await ours.post(url, content=body, headers=HEADERS)
        assert response.status_code == 202

    async def send_delivery() -> None:
        result = await post_bytes(ours, url, body, HEADERS)
        assert result.status == 202

    results = [
        Result("aiohttp ClientSession (raw)", send_aiohttp),
        Result("httpx, default transport", send_httpx),
        Result("httpx + Herold transport", send_ours),
        # What the delivery worker uses: the same client and transport, past httpx's models.
        Result("Herold delivery (post_bytes)", send_delivery),
    ]
    try:
        for result in results:
            await _drive(result.send, WARM_UP, args.concurrency)  # open the connections, warm caches
        # Rounds interleave the clients, so a burst of noise from elsewhere on the machine
        # lands on all of them rather than on one.
        for _ in range(args.rounds):
            for result in results:
                cpu, wall = time.process_time(), time.perf_counter()
                await _drive(result.send, args.requests, args.concurrency)
                result.cpu_s = min(result.cpu_s, time.process_time() - cpu)
                result.wall_s = min(result.wall_s, time.perf_counter() - wall)
    finally:
        await session.close()
        await default_client.aclose()
        await ours.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uvloop", action="store_true", help="run the clients on uvloop, as uvicorn does")
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    server = context.Process(target=_serve, args=(sender,), daemon=True)
    server.start()
    try:
        if not receiver.poll(30):
            raise SystemExit("the benchmark server did not start")
        port = receiver.recv()
        results = run_event_loop(_bench(port, args), "uvloop" if args.uvloop else "asyncio")
    finally:
        server.terminate()
        server.join()

    loop_name = "uvloop" if args.uvloop else "asyncio"
    print(
        f"{args.requests} POSTs of {len(_body())} B at concurrency {args.concurrency}, "
        f"best of {args.rounds} rounds, {loop_name} event loop\n"
    )
    print(f"{'client':<30} {'CPU ms/request':>15} {'wall s':>8} {'requests/s':>11}")
    for result in results:
        rate = args.requests / result.wall_s
        cpu_ms = result.cpu_ms_per_request(args.requests)
        print(f"{result.name:<30} {cpu_ms:>15.3f} {result.wall_s:>8.2f} {rate:>11.0f}")
    raw = results[0].cpu_ms_per_request(args.requests)
    through_httpx = results[2].cpu_ms_per_request(args.requests) / raw
    delivery = results[3].cpu_ms_per_request(args.requests) / raw
    verdict = "met" if delivery <= GOAL else "MISSED"
    print(f"\nhttpx API / raw aiohttp: {through_httpx:.2f}x (fetches)")
    print(f"delivery path / raw aiohttp: {delivery:.2f}x (goal <= {GOAL}x: {verdict})")


if __name__ == "__main__":
    main()
