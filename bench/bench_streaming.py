"""The streaming API under many connections, against `herold serve` as `make run` starts it.

1,000 WebSocket clients (one aiohttp process on loopback) hold the token of one staff member,
offer permessage-deflate as browsers do, and subscribe to `user` and `public:local`. Measured:
- the memory of the web processes per idle connection: their resident memory with every client
  connected and idle, minus it once the first 100 were (WARM_UP_CLIENTS), divided by the clients
  connected since. The first burst of handshakes costs a few MB per web process once (the database
  pool grows to its size, the hub starts, pymalloc keeps the burst's high-water mark), whatever the
  number of connections after it: that is reported apart, and with it the figure counted from
  before the first connection;
- for one local post by an account nobody else follows: the time from sending it to the API until
  99 % of the clients have its `update` event (p50 and p99 over the clients);
- the same for a post by an account with 5,000 remote followers (its fan-out runs in the worker
  process at the same time), and for a post made 0.3 s after it, while that fan-out is under way:
  the delay those add to the first's p99.

Goals (issue 19): p99 ≤ 500 ms on 2 cores; ≤ 50 KB per idle connection; a post with 5,000 remote
followers delays streaming events by at most 200 ms.

    python -m bench streaming [--clients 1000] [--followers 5000] [--short]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field

import aiohttp

from bench.served import deployment, role_of
from bench.served_fanout import SinkProcess, seed
from bench.verdicts import Verdicts, load_average

GOAL_P99_MS = 500.0
GOAL_KB_PER_CONNECTION = 50.0
GOAL_FANOUT_DELAY_MS = 200.0
WARM_UP_CLIENTS = 100


@dataclass
class Client:
    socket: aiohttp.ClientWebSocketResponse
    arrivals: dict[str, float] = field(default_factory=dict)


async def connect(session: aiohttp.ClientSession, url: str, token: str) -> Client:
    # Offering permessage-deflate, as browsers do (aiohttp does not by default): the server's
    # answer to that offer decides how much memory each connection holds.
    socket = await session.ws_connect(
        f"{url}?stream=user", headers={"Authorization": f"Bearer {token}"}, compress=15
    )
    await socket.send_json({"type": "subscribe", "stream": "public:local"})
    return Client(socket)


async def read_forever(client: Client) -> None:
    async for message in client.socket:
        if message.type != aiohttp.WSMsgType.TEXT:
            continue
        body = json.loads(message.data)
        if body.get("event") == "update" and body.get("stream") == ["public:local"]:
            status_id = json.loads(body["payload"])["id"]
            client.arrivals.setdefault(status_id, time.perf_counter())


def web_rss(herold: object) -> int:
    """Resident memory of the web processes only (the worker and signer hold no connections)."""
    return sum(stat.rss_bytes for stat in herold.tree() if role_of(stat.pid) == "web")  # type: ignore[attr-defined]


async def post(session: aiohttp.ClientSession, base: str, token: str, text: str) -> tuple[str, float]:
    """Post through the API; the status's id and the moment the request was sent."""
    sent = time.perf_counter()
    async with session.post(
        f"{base}/api/v1/statuses", data={"status": text}, headers={"Authorization": f"Bearer {token}"}
    ) as answer:
        body = await answer.json()
        assert answer.status == 200, body
    return str(body["id"]), sent


async def wait_for(clients: list[Client], status_id: str, seconds: float = 30.0) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if all(status_id in client.arrivals for client in clients):
            return
        await asyncio.sleep(0.05)


def latencies(clients: list[Client], status_id: str, sent: float) -> list[float]:
    return sorted(
        (client.arrivals[status_id] - sent) * 1000 for client in clients if status_id in client.arrivals
    )


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("inf")
    return values[min(len(values) - 1, int(len(values) * share))]


async def measure(herold: object, clients_wanted: int, tokens: dict[str, str]) -> dict[str, object]:
    base: str = herold.base_url  # type: ignore[attr-defined]
    url = base.replace("http://", "ws://") + "/api/v1/streaming"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.sleep(2)
        before = web_rss(herold)
        clients: list[Client] = []
        warmed = before
        for start in range(0, clients_wanted, 100):
            clients += await asyncio.gather(
                *(connect(session, url, tokens["reader"]) for _ in range(min(100, clients_wanted - start)))
            )
            if len(clients) == WARM_UP_CLIENTS:
                await asyncio.sleep(3)
                warmed = web_rss(herold)
        readers = [asyncio.create_task(read_forever(client)) for client in clients]
        await asyncio.sleep(3)
        after = web_rss(herold)
        results: dict[str, object] = {
            "clients": len(clients),
            "kb_per_connection": (after - warmed) / 1024 / max(1, len(clients) - WARM_UP_CLIENTS),
            "kb_all_in": (after - before) / 1024 / len(clients),
            "warm_up_mb": (warmed - before) / 2**20,
        }

        quiet_id, quiet_sent = await post(session, base, tokens["quiet"], "A quiet post")
        await wait_for(clients, quiet_id)
        results["quiet"] = latencies(clients, quiet_id, quiet_sent)

        big_id, big_sent = await post(session, base, tokens["herold"], "A post to 5,000 followers")
        await asyncio.sleep(0.3)
        during_id, during_sent = await post(session, base, tokens["quiet"], "While the fan-out runs")
        await wait_for(clients, big_id)
        await wait_for(clients, during_id)
        results["big"] = latencies(clients, big_id, big_sent)
        results["during"] = latencies(clients, during_id, during_sent)
        for task in readers:
            task.cancel()
        await asyncio.gather(*(client.socket.close() for client in clients), return_exceptions=True)
    return results


def run(clients: int, followers: int) -> dict[str, object]:
    sink = SinkProcess()
    herold = deployment(None, env={"ALLOWED_PRIVATE_ADDRESSES": "127.0.0.0/8"})
    try:
        herold.migrate()
        asyncio.run(seed(herold.settings(), sink.port, followers))
        for name in ("reader", "quiet"):
            herold.cli("accounts", "create", name, "--password", "bench-password-long")
        herold.serve()
        tokens = {
            name: herold.cli("tokens", "create", name, "--scopes", "read write").strip().splitlines()[-1]
            for name in ("reader", "quiet", "herold")
        }
        return asyncio.run(measure(herold, clients, tokens))
    finally:
        herold.stop()
        sink.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench streaming", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--followers", type=int, default=5000)
    parser.add_argument("--short", action="store_true", help="a quick check: 200 clients, 1,000 followers")
    options = parser.parse_args(argv)
    clients, followers = (200, 1000) if options.short else (options.clients, options.followers)
    print(
        f"streaming: {clients} WebSocket clients on herold serve as make run starts it (load average {load_average()})"
    )
    results = run(clients, followers)
    quiet, big, during = (results[name] for name in ("quiet", "big", "during"))
    assert isinstance(quiet, list) and isinstance(big, list) and isinstance(during, list)
    for label, values in (
        ("quiet post", quiet),
        (f"post to {followers} followers", big),
        ("post during its fan-out", during),
    ):
        print(
            f"  {label:<28} {len(values):>5} of {results['clients']} clients; "
            f"p50 {statistics.median(values) if values else float('inf'):.0f} ms, p99 {percentile(values, 0.99):.0f} ms"
        )
    print(
        f"  web processes' memory per idle connection: {results['kb_per_connection']:.1f} KB "
        f"(clients {WARM_UP_CLIENTS + 1} to {results['clients']}); the first {WARM_UP_CLIENTS}: "
        f"{results['warm_up_mb']:.1f} MB; counted from no connection at all: {results['kb_all_in']:.1f} KB each"
    )
    verdicts = Verdicts()
    verdicts.check(
        "streaming: p99 until a local post's update (ms)",
        percentile(quiet, 0.99),
        "<=",
        GOAL_P99_MS,
        "{:.0f}",
    )
    verdicts.check(
        "streaming: KB per idle connection",
        float(results["kb_per_connection"]),
        "<=",
        GOAL_KB_PER_CONNECTION,
        "{:.1f}",  # type: ignore[arg-type]
    )
    delay = max(percentile(big, 0.99), percentile(during, 0.99)) - percentile(quiet, 0.99)
    verdicts.check(
        f"streaming: delay added by a post to {followers} followers (ms)",
        delay,
        "<=",
        GOAL_FANOUT_DELAY_MS,
        "{:.0f}",
    )
    return verdicts.summary()


if __name__ == "__main__":
    raise SystemExit(main())
