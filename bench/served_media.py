"""The inbox while the worker caches 200 remote pictures, against `herold serve` as `make run`
starts it (bench/served.py), with the CPU of every process of the server counted.

    python -m bench served-media [--images 200] [--rate 100] [--postgres]

16 remote actors on 4 fake servers, followed by a local user, send signed activities to the shared
inbox at a steady pace (`--rate` a second, open loop: a request's latency counts from the moment
it was due, so a server that falls behind is not hidden by a client that waits for it). 200 of
the Creates carry a picture each (distinct JPEGs of about 2 megapixels and PNG graphics, real
bytes of realistic size, served by an origin process on loopback; ALLOWED_PRIVATE_ADDRESSES=
127.0.0.0/8 is the one setting added to the defaults): their posts reach her home timeline, so
the worker fetches, checks, re-encodes, previews and blurhashes every one (`media.cache_remote`)
while the inbox traffic goes on. Measured in the same run:

- the ceiling: a bare endpoint in a process of its own that only checks the Digest and verifies
  the RSA signature (served-inbox's), under the same paced traffic, before and after Herold's
  rounds: its p99 is what the machine allows right now;
- Herold, the same pace without pictures (the baseline), then while the pictures are cached: the
  inbox p50/p99 of the requests sent from the first picture's Create until the last copy was
  made, and that every copy was made;
- the CPU of every process of the server in that window, by role (web, worker, signer): where
  the time goes.

Goal (issue 18): inbox p99 <= 50 ms while the worker caches 200 remote images.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import os
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.bench_inbox import (
    Prepared,
    _activity,
    _public_pems,
    _run_server,
    _seed,
    _serve_ceiling,
    _sign_chunk,
)
from bench.served import deployment, free_port, layout_name
from bench.served_inbox import Backlog
from bench.verdicts import Verdicts, extra_env, load_average

GOAL_P99_MS = 50.0
POSTGRES_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
# The origin serving the pictures: an address of its own on loopback.
ORIGIN_HOST = "127.3.0.1"
BASELINE_SECONDS = 10.0
CEILING_SECONDS = 8.0


# ------------------------------------------------------------------------------------------------
# The pictures and the origin serving them


def picture(number: int) -> tuple[bytes, str]:
    """Picture `number`: three in four a photo-like JPEG of about 2 megapixels (a few hundred KB),
    the rest a PNG graphic of 1280x720; every one distinct."""
    from PIL import Image, ImageDraw, ImageFilter

    generator = random.Random(number)
    if number % 4 != 3:
        width, height = 1632, 1224
        small = Image.frombytes(
            "RGB", (width // 16, height // 16), generator.randbytes((width // 16) * (height // 16) * 3)
        )
        image = small.resize((width, height), Image.Resampling.BICUBIC).filter(ImageFilter.DETAIL)
        output = io.BytesIO()
        image.save(output, "JPEG", quality=88)
        return output.getvalue(), "image/jpeg"
    image = Image.new("RGB", (1280, 720), tuple(generator.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = generator.randrange(1280), generator.randrange(720)
        colour = tuple(generator.randrange(256) for _ in range(3))
        draw.rectangle(
            (x, y, x + generator.randrange(20, 300), y + generator.randrange(10, 120)), fill=colour
        )
        draw.text((x, y), f"slide {number}", fill=(0, 0, 0))
    output = io.BytesIO()
    image.save(output, "PNG")
    return output.getvalue(), "image/png"


def _serve_origin(count: int, channel: Any) -> None:
    """The pictures' server (a process of its own, not counted): GET /img/N answers picture N."""
    from aiohttp import web

    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        files = list(pool.map(picture, range(count), chunksize=8))
    fetched: dict[int, int] = {}

    async def serve(request: web.Request) -> web.Response:
        number = int(request.match_info["number"])
        if not 0 <= number < count:
            return web.Response(status=404)
        fetched[number] = fetched.get(number, 0) + 1
        body, content_type = files[number]
        return web.Response(body=body, content_type=content_type)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/img/{number}", serve)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, ORIGIN_HOST, 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        sizes = [len(body) for body, _ in files]
        channel.send((port, sum(sizes), [kind for _, kind in files]))
        loop = asyncio.get_running_loop()
        while True:
            message = await loop.run_in_executor(None, channel.recv)
            if message == "stop":
                break
            channel.send(dict(fetched))
        await runner.cleanup()

    asyncio.run(main())


class Origin:
    def __init__(self, count: int) -> None:
        spawn = multiprocessing.get_context("spawn")
        self.channel, remote = spawn.Pipe()
        # Not a daemon: it makes the pictures in a pool of its own first.
        self.process = spawn.Process(target=_serve_origin, args=(count, remote))
        self.process.start()
        deadline = time.monotonic() + 300
        while not self.channel.poll(1):
            if not self.process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the picture origin did not start")
        self.port, self.bytes, self.kinds = self.channel.recv()

    def url(self, number: int) -> str:
        return f"http://{ORIGIN_HOST}:{self.port}/img/{number}"

    def fetched(self) -> dict[int, int]:
        self.channel.send("counts")
        found: dict[int, int] = self.channel.recv()
        return found

    def stop(self) -> None:
        self.channel.send("stop")
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()


# ------------------------------------------------------------------------------------------------
# The activities


def with_picture(activity: dict[str, Any], url: str, media_type: str, number: int) -> dict[str, Any]:
    """A Create from bench_inbox with one attachment, as Mastodon writes it."""
    note = activity["object"]
    note["attachment"] = [
        {
            "type": "Document",
            "mediaType": media_type,
            "url": url,
            "name": f"Picture number {number}",
            "blurhash": None,
            "focalPoint": [0.0, 0.0],
            "width": 1632 if media_type == "image/jpeg" else 1280,
            "height": 1224 if media_type == "image/jpeg" else 720,
        }
    ]
    return activity


def prepare(
    url: str,
    count: int,
    alice: str,
    post_uri: str,
    signers: list[tuple[str, str, str]],
    pictures: list[tuple[str, str]],
    first_index: int,
) -> list[Prepared]:
    """`count` signed activities (bench_inbox's mix of Creates and Likes), numbered from
    `first_index`; the first Creates carry `pictures` (url, type), one each, spread over the
    stream's start at every other request."""
    bodies: list[tuple[int, str]] = []
    pending = list(pictures)
    for position in range(count):
        index = first_index + position
        actor = signers[index % len(signers)][0]
        activity = _activity(index, actor, alice, post_uri)
        if pending and activity["type"] == "Create" and position % 2 == 0:
            picture_url, media_type = pending.pop(0)
            activity = with_picture(activity, picture_url, media_type, len(pictures) - len(pending))
        bodies.append((index % len(signers), json.dumps(activity)))
    if pending:
        raise RuntimeError(f"{len(pending)} pictures found no Create to ride on; send more requests")
    chunks: dict[int, list[str]] = {}
    order: list[tuple[int, int]] = []
    for signer, body in bodies:
        chunk = chunks.setdefault(signer, [])
        order.append((signer, len(chunk)))
        chunk.append(body)
    jobs = [(url, signers[i][1], signers[i][2], signers[i][0], chunk) for i, chunk in chunks.items()]
    with ProcessPoolExecutor(
        max_workers=os.cpu_count() or 2, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        signed = dict(zip(chunks, pool.map(_sign_chunk, jobs), strict=True))
    return [signed[signer][position] for signer, position in order]


# ------------------------------------------------------------------------------------------------
# Paced traffic


@dataclass
class Paced:
    # (due time relative to the round's start, latency from due time in ms, status)
    answers: list[tuple[float, float, int]] = field(default_factory=list)
    seconds: float = 0.0

    def window(self, start: float, end: float) -> list[float]:
        return [latency for due, latency, _ in self.answers if start <= due <= end]

    @property
    def statuses(self) -> dict[int, int]:
        found: dict[int, int] = {}
        for _, _, status in self.answers:
            found[status] = found.get(status, 0) + 1
        return found


def percentile(latencies: list[float], fraction: float) -> float:
    if not latencies:
        return float("nan")
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def send_paced(
    port: int,
    host: str,
    requests: list[Prepared],
    rate: float,
    *,
    stop: asyncio.Event | None = None,
    connections: int = 64,
) -> Paced:
    """POST `requests` to /inbox at `rate` a second (until `stop` is set, if given)."""
    import aiohttp

    url = f"http://127.0.0.1:{port}/inbox"
    result = Paced()
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()

        async def one(prepared: Prepared, due: float) -> None:
            headers = {**prepared.headers, "Host": host}
            for attempt in range(3):
                try:
                    async with session.post(url, data=prepared.body, headers=headers) as answer:
                        await answer.read()
                    break
                except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                    # A kept-alive connection the server closed as it was reused (its idle
                    # timeout, between paced requests): sent again on a new one, the time counted.
                    if attempt == 2:
                        raise
            result.answers.append((due - started, (time.perf_counter() - due) * 1000, answer.status))

        tasks = []
        for number, prepared in enumerate(requests):
            due = started + number / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if stop is not None and stop.is_set():
                break
            tasks.append(asyncio.create_task(one(prepared, due)))
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - started
    return result


# ------------------------------------------------------------------------------------------------
# The run


@dataclass
class MediaRun:
    layout: str
    rate: float
    images: int
    image_bytes: int
    ceiling_p99_ms: float
    ceiling_p50_ms: float
    baseline: list[float]
    during: list[float]
    caching_s: float
    cached: int
    fetched: int
    cpu_s: float
    by_role: dict[str, float]
    statuses: dict[int, int]
    drain_s: float
    warnings: list[str]
    load_before: str
    load_after: str
    processes: int
    rss_mb: float


def run_once(
    images: int, rate: float, database_url: str | None, max_seconds: float, env: dict[str, str] | None
) -> MediaRun:
    layout = layout_name(database_url)
    herold = deployment(database_url, env={"ALLOWED_PRIVATE_ADDRESSES": "127.0.0.0/8", **(env or {})})
    origin: Origin | None = None
    ceiling_server: Any = None
    try:
        print(f"making {images} pictures for the origin…", flush=True)
        origin = Origin(images)
        herold.migrate()
        settings = herold.settings()
        alice, post_uri, signers = asyncio.run(_seed(settings, 16))
        host = herold.local_domain
        inbox = f"http://{host}/inbox"
        ceiling_count = int(rate * CEILING_SECONDS)
        baseline_count = int(rate * BASELINE_SECONDS)
        during_count = int(rate * max_seconds)
        print(f"signing {ceiling_count + baseline_count + during_count} activities…", flush=True)
        pictures = [(origin.url(n), origin.kinds[n]) for n in range(images)]
        plain = prepare(inbox, ceiling_count + baseline_count, alice, post_uri, signers, [], 0)
        ceiling_requests, baseline_requests = plain[:ceiling_count], plain[ceiling_count:]
        during_requests = prepare(inbox, during_count, alice, post_uri, signers, pictures, len(plain))

        ceiling_port = free_port()
        ceiling_server = _run_server(_serve_ceiling, (ceiling_port, _public_pems(signers)))
        herold.serve()
        backlog = Backlog(herold.database_url)

        def ceiling_round() -> Paced:
            paced = asyncio.run(send_paced(ceiling_port, host, ceiling_requests, rate))
            if paced.statuses.get(202, 0) != len(ceiling_requests):
                raise RuntimeError(f"the ceiling refused requests: {paced.statuses}")
            return paced

        ceilings = [ceiling_round()]
        # Warm-up and baseline: the same pace, no pictures (the first second not counted).
        print("baseline: the same pace without pictures…", flush=True)
        baseline = asyncio.run(send_paced(herold.port, host, baseline_requests, rate))
        asyncio.run(backlog.wait_drained())
        load_before = load_average()

        async def during_caching() -> tuple[Paced, float, float, dict[str, float], int]:
            done = asyncio.Event()
            finished_at = 0.0
            cached = 0

            async def watch(started: float) -> None:
                nonlocal finished_at, cached
                while True:
                    cached = await backlog.scalar(
                        "SELECT count(*) FROM media_attachment WHERE cached_at IS NOT NULL"
                    )
                    if cached >= images:
                        finished_at = time.perf_counter() - started
                        done.set()
                        return
                    await asyncio.sleep(0.1)

            cpu_before, roles_before = herold.cpu_seconds(), herold.cpu_by_role()
            started = time.perf_counter()
            watcher = asyncio.create_task(watch(started))
            paced = await send_paced(herold.port, host, during_requests, rate, stop=done)
            if not done.is_set():
                watcher.cancel()
                finished_at = time.perf_counter() - started
            cpu = herold.cpu_seconds() - cpu_before
            roles = {
                role: seconds - roles_before.get(role, 0.0) for role, seconds in herold.cpu_by_role().items()
            }
            return paced, finished_at, cpu, roles, cached

        print(
            f"{images} pictures in the stream, the inbox traffic going on until every copy is made…",
            flush=True,
        )
        paced, caching_s, cpu_s, by_role, cached = asyncio.run(during_caching())
        drain_s = asyncio.run(backlog.wait_drained())
        load_after = load_average()
        ceilings.append(ceiling_round())
        asyncio.run(backlog.aclose())
        fetched = sum(origin.fetched().values())
        ceiling_latencies = [ceiling.window(1.0, 1e9) for ceiling in ceilings]
        return MediaRun(
            layout=layout,
            rate=rate,
            images=images,
            image_bytes=origin.bytes,
            ceiling_p99_ms=max(percentile(latencies, 0.99) for latencies in ceiling_latencies),
            ceiling_p50_ms=max(statistics.median(latencies) for latencies in ceiling_latencies),
            baseline=baseline.window(1.0, 1e9),
            during=paced.window(0.0, caching_s),
            caching_s=caching_s,
            cached=cached,
            fetched=fetched,
            cpu_s=cpu_s,
            by_role=by_role,
            statuses=paced.statuses,
            drain_s=drain_s,
            warnings=[
                line for line in herold.log_text().splitlines() if " WARNING " in line or " ERROR " in line
            ],
            load_before=load_before,
            load_after=load_after,
            processes=len(herold.pids()),
            rss_mb=herold.rss() / 2**20,
        )
    finally:
        if ceiling_server is not None:
            ceiling_server.terminate()
            ceiling_server.join()
        if origin is not None:
            origin.stop()
        herold.stop()


def report(run: MediaRun, verdicts: Verdicts) -> None:
    print(
        f"\n{run.layout}: {run.processes} server processes; signed activities at {run.rate:.0f}/s; "
        f"{run.images} pictures of {run.image_bytes / run.images / 1024:.0f} KB on average"
    )
    print(
        f"  ceiling (Digest + RSA verify only) at the same pace: p50 {run.ceiling_p50_ms:.1f} ms, p99 {run.ceiling_p99_ms:.1f} ms"
    )
    print(
        f"  Herold without pictures (baseline): p50 {statistics.median(run.baseline):.1f} ms, "
        f"p99 {percentile(run.baseline, 0.99):.1f} ms over {len(run.baseline)} requests"
    )
    print(
        f"  Herold while caching: {run.cached}/{run.images} copies made in {run.caching_s:.1f} s "
        f"({run.fetched} fetches from the origin); inbox p50 {statistics.median(run.during):.1f} ms, "
        f"p99 {percentile(run.during, 0.99):.1f} ms, max {max(run.during):.0f} ms over {len(run.during)} requests; "
        f"answers {dict(sorted(run.statuses.items()))}; inbox backlog drained {run.drain_s:.2f} s later"
    )
    print(
        f"  CPU of all server processes in that window: {run.cpu_s:.1f} s "
        f"({run.cpu_s / run.caching_s if run.caching_s else 0:.2f} cores), by role: "
        + ", ".join(f"{role} {seconds:.1f} s" for role, seconds in sorted(run.by_role.items()))
        + f"; {run.by_role.get('worker', run.cpu_s) * 1000 / max(1, run.cached):.0f} ms per copy at most; RSS {run.rss_mb:.0f} MB"
    )
    print(f"  load average before the caching round: {run.load_before}; after: {run.load_after}")
    if run.warnings:
        print(f"  the server logged {len(run.warnings)} warnings or errors, first ones:")
        for line in run.warnings[:5]:
            print(f"    {line[:300]}")
    verdicts.check(f"media {run.layout}: copies made", run.cached, ">=", run.images, "{:.0f}")
    verdicts.check(
        f"media {run.layout}: inbox p99 ms while caching",
        percentile(run.during, 0.99),
        "<=",
        GOAL_P99_MS,
        "{:.1f}",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench served-media",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0, help="signed activities a second")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="give up caching after this long")
    parser.add_argument("--short", action="store_true", help="a quick check: 50 pictures")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=POSTGRES_DEFAULT,
        metavar="URL",
        help=f"the PostgreSQL layout (one web process, one `herold worker`; default {POSTGRES_DEFAULT})",
    )
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    if args.short:
        args.images = min(args.images, 50)
    verdicts = Verdicts()
    print(f"served media; {os.cpu_count()} cores, load average {load_average()}", flush=True)
    run = run_once(args.images, args.rate, args.postgres, args.max_seconds, extra_env(args.env))
    report(run, verdicts)
    print(f"load average after: {load_average()}")
    return verdicts.summary()


if __name__ == "__main__":
    raise SystemExit(main())
