"""Signed inbox traffic for the load benchmarks (bench_worker_load.py, soak.py).

- `seed`: a database with local accounts (the organisation account `townhall`, which remote
  actors mention; `alice`, `bob` and `carol`, who follow some remote actors) and many known
  remote actors spread over enough hosts that the inbox's per-host limit does not refuse them.
- `Traffic`: signed deliveries of three kinds, mixed in a given proportion:
  `mention` (a public Create mentioning @townhall by an actor nobody here follows: a post, a
  mention and a notification), `followed` (a public Create by an actor the three follow: a post
  and three home-timeline entries) and `like` (a Like of townhall's post: a favourite and a
  notification). Signing is done in child processes, in chunks, ahead of the sending.
- `send_at_rate`: open-loop sending at a fixed rate (requests start on schedule whatever the
  answers take, as independent peers do), and `send_closed_loop` for the maximum rate.
- `Progress`: what the worker has done, read from the database (inbox items processed and
  queued, notifications, timeline entries).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
# Remote actors share a few key pairs: generating 800 RSA keys would take minutes, and the server
# verifies each actor's key the same way whoever else has it.
KEY_PAIRS = 8
# Actors per remote host: the inbox allows each host 3,000 activities in 5 minutes.
ACTORS_PER_HOST = 8
LOCAL_FOLLOWERS = ("alice", "bob", "carol")
KINDS = ("mention", "followed", "like")


@dataclass(frozen=True)
class Actor:
    uri: str
    key_id: str
    private_pem: str


@dataclass(frozen=True)
class Population:
    base_url: str
    townhall_uri: str
    townhall_post_uri: str
    # Known here, followed by nobody: they mention @townhall and like its post.
    strangers: list[Actor]
    # Followed by alice, bob and carol.
    followed: list[Actor]


async def seed(settings: Any, strangers: int, followed: int) -> Population:
    """Migrate `settings`' database and fill it (see the module's docstring)."""
    from sqlalchemy import insert

    from app.activitypub.keys import generate_key_pair
    from app.context import build_context
    from app.migrations import upgrade_database
    from app.models import Account, Follow, FollowState, Post
    from app.models.base import new_ids, table_of
    from app.services import accounts as account_service
    from app.services.accounts import AccountService

    await upgrade_database(settings)
    context = build_context(settings, role="command")

    # Password hashing is not what is measured here.
    async def cheap_hash(password: str) -> str:
        return "unusable:bench"

    account_service.hash_password = cheap_hash  # type: ignore[attr-defined]
    try:
        accounts = AccountService(context)
        await accounts.instance_actor()
        townhall = (await accounts.create_local_account("townhall", organization=True)).account
        readers = [
            (await accounts.create_local_account(name, password="benchmark-pass")).account
            for name in LOCAL_FOLLOWERS
        ]
        pairs = await asyncio.gather(*(asyncio.to_thread(generate_key_pair) for _ in range(KEY_PAIRS)))
        now = datetime.now(UTC)
        actors: list[Actor] = []
        rows = []
        total = strangers + followed
        for index, account_id in zip(range(total), new_ids(total), strict=True):
            host = f"peer{index // ACTORS_PER_HOST}.example"
            uri = f"http://{host}/users/u{index}"
            private_pem, public_pem = pairs[index % KEY_PAIRS]
            actors.append(Actor(uri, f"{uri}#main-key", private_pem))
            rows.append(
                {
                    "id": account_id,
                    "username": f"u{index}",
                    "domain": host,
                    "uri": uri,
                    "url": uri,
                    "inbox_url": f"{uri}/inbox",
                    "shared_inbox_url": f"http://{host}/inbox",
                    "followers_url": f"{uri}/followers",
                    "key_id": f"{uri}#main-key",
                    "public_key_pem": public_pem,
                    "fetched_at": now,
                }
            )
        async with context.sessions() as session:
            from app.services.batch_writes import new_row

            await session.execute(insert(table_of(Account)), [new_row(Account, **row) for row in rows])
            follows = [
                new_row(
                    Follow,
                    id=follow_id,
                    follower_id=reader.id,
                    followee_id=rows[strangers + number]["id"],
                    state=FollowState.ACCEPTED,
                )
                for (reader, number), follow_id in zip(
                    itertools.product(readers, range(followed)), new_ids(len(readers) * followed), strict=True
                )
            ]
            if follows:
                await session.execute(insert(table_of(Follow)), follows)
            post = Post(
                uri=context.urls.post("townhall", 1),
                account_id=townhall.id,
                local=True,
                content_html="<p>Town hall tonight</p>",
            )
            session.add(post)
            await session.commit()
        return Population(
            base_url=context.urls.base,
            townhall_uri=townhall.uri,
            townhall_post_uri=post.uri,
            strangers=actors[:strangers],
            followed=actors[strangers:],
        )
    finally:
        await context.aclose()


def activity(kind: str, number: int, actor: str, population: Population, tag: str = "") -> dict[str, Any]:
    """Delivery `number` of `kind` by `actor` (`tag` keeps the ids of separate runs apart)."""
    if kind == "like":
        return {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{actor}#likes/{tag}{number}",
            "type": "Like",
            "actor": actor,
            "object": population.townhall_post_uri,
        }
    note_id = f"{actor}/statuses/{tag}{number}"
    mentioned = kind == "mention"
    cc = [f"{actor}/followers", population.townhall_uri] if mentioned else [f"{actor}/followers"]
    tags: list[dict[str, str]] = [
        {"type": "Hashtag", "href": "https://example.org/tags/bench", "name": "#bench"}
    ]
    mention = ""
    if mentioned:
        tags.append({"type": "Mention", "href": population.townhall_uri, "name": "@townhall"})
        mention = (
            f'<span class="h-card"><a href="{population.townhall_uri}" class="u-url mention">'
            "@<span>townhall</span></a></span> "
        )
    return {
        "@context": [
            "https://www.w3.org/ns/activitystreams",
            {"sensitive": "as:sensitive", "Hashtag": "as:Hashtag"},
        ],
        "id": f"{note_id}/activity",
        "type": "Create",
        "actor": actor,
        "published": "2026-05-01T12:00:00Z",
        "to": [PUBLIC],
        "cc": cc,
        "object": {
            "id": note_id,
            "type": "Note",
            "summary": None,
            "inReplyTo": None,
            "published": "2026-05-01T12:00:00Z",
            "url": note_id.replace("/users/", "/@").replace("/statuses/", "/"),
            "attributedTo": actor,
            "to": [PUBLIC],
            "cc": cc,
            "sensitive": False,
            "content": (
                f"<p>{mention}Note number {number}, with a "
                '<a href="https://example.org/x">link</a> and <a href="https://example.org/tags/bench" '
                'class="mention hashtag" rel="tag">#<span>bench</span></a> so that sanitising has some '
                "work to do.</p>"
            ),
            "contentMap": {"en": f"<p>Note number {number}</p>"},
            "attachment": [],
            "tag": tags,
        },
    }


def parse_mix(text: str) -> list[str]:
    """ "mention:4,like:1" → a repeating pattern of kinds in that proportion."""
    pattern: list[str] = []
    for part in text.split(","):
        kind, _, weight = part.partition(":")
        kind = kind.strip()
        if kind not in KINDS:
            raise SystemExit(f"unknown kind {kind!r} in --mix (one of {', '.join(KINDS)})")
        pattern.extend([kind] * int(weight or 1))
    return pattern


@dataclass(frozen=True)
class Signed:
    kind: str
    body: bytes
    headers: dict[str, str]


def _sign(job: tuple[str, list[tuple[str, str, str, str]]]) -> list[tuple[str, bytes, dict[str, str]]]:
    from app.activitypub.signatures import KeyCache, sign_request

    url, items = job
    keys = KeyCache()
    signed = []
    for kind, key_id, private_pem, body in items:
        raw = body.encode()
        headers = sign_request(
            method="POST", url=url, body=raw, key_id=key_id, private_key=keys.private_key(private_pem)
        )
        signed.append((kind, raw, headers))
    return signed


class Traffic:
    """An endless stream of signed deliveries to `inbox_url` in the proportions of `mix`."""

    CHUNK = 250

    def __init__(
        self, population: Population, inbox_url: str, mix: str, tag: str, processes: int = 2
    ) -> None:
        self.population = population
        self.inbox_url = inbox_url
        self.pattern = parse_mix(mix)
        self.tag = tag
        self.counter = itertools.count()
        self.pool = ProcessPoolExecutor(
            max_workers=processes, mp_context=multiprocessing.get_context("spawn")
        )
        self.ahead: list[Future[list[tuple[str, bytes, dict[str, str]]]]] = []

    def _next_job(self) -> tuple[str, list[tuple[str, str, str, str]]]:
        items = []
        population = self.population
        for _ in range(self.CHUNK):
            number = next(self.counter)
            kind = self.pattern[number % len(self.pattern)]
            actors = population.followed if kind == "followed" else population.strangers
            actor = actors[(number // len(self.pattern)) % len(actors)]
            body = json.dumps(activity(kind, number, actor.uri, population, self.tag))
            items.append((kind, actor.key_id, actor.private_pem, body))
        return self.inbox_url, items

    def _keep_ahead(self, chunks: int) -> None:
        while len(self.ahead) < chunks:
            self.ahead.append(self.pool.submit(_sign, self._next_job()))

    def prepare(self, count: int) -> list[Signed]:
        """`count` deliveries, signed now (for a run that must not sign while it measures)."""
        self._keep_ahead(-(-count // self.CHUNK))
        signed: list[Signed] = []
        while len(signed) < count:
            signed.extend(Signed(*item) for item in self.ahead.pop(0).result())
        return signed[:count]

    async def stream(self, lookahead: int = 8) -> AsyncIterator[Signed]:
        """Deliveries signed in child processes a few chunks ahead of their use."""
        while True:
            self._keep_ahead(lookahead)
            chunk = await asyncio.wrap_future(self.ahead.pop(0))
            for item in chunk:
                yield Signed(*item)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class SendResult:
    sent: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    by_kind: Counter[str] = field(default_factory=Counter)
    # Requests that could not start on time because `max_in_flight` were still open.
    late: int = 0

    @property
    def accepted(self) -> int:
        return self.statuses.get(202, 0)

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]

    def failures(self) -> int:
        """Answers other than 202, and requests that got no answer at all."""
        return sum(count for status, count in self.statuses.items() if status != 202) + sum(
            self.errors.values()
        )


async def _post(session: Any, url: str, host: str, signed: Signed, result: SendResult) -> None:
    started = time.perf_counter()
    try:
        async with session.post(url, data=signed.body, headers={**signed.headers, "Host": host}) as response:
            await response.read()
            result.statuses[response.status] += 1
            if response.status == 202:
                result.by_kind[signed.kind] += 1
    except Exception as error:  # a bench counts whatever went wrong rather than stopping
        result.errors[type(error).__name__] += 1
        return
    result.latencies_ms.append((time.perf_counter() - started) * 1000)


def client_session(limit: int, source_address: str | None = None) -> Any:
    """An aiohttp session of `limit` connections, from `source_address` (a loopback address) if
    given: readers from several addresses are several people to the server's per-address limits."""
    import aiohttp

    local = (source_address, 0) if source_address else None
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, local_addr=local)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))


async def send_closed_loop(url: str, host: str, requests: list[Signed], concurrency: int) -> SendResult:
    """As fast as the server answers, `concurrency` requests at a time: its maximum rate."""
    result = SendResult()
    queue: Iterator[Signed] = iter(requests)
    async with client_session(concurrency) as session:

        async def client() -> None:
            for signed in queue:
                await _post(session, url, host, signed, result)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    result.sent = len(requests)
    return result


async def send_at_rate(
    url: str,
    host: str,
    requests: AsyncIterator[Signed] | list[Signed],
    rate: float,
    seconds: float,
    max_in_flight: int = 512,
) -> SendResult:
    """Start a request every 1/`rate` s for `seconds`, however long the answers take (at most
    `max_in_flight` open; beyond that a request waits, counted as late)."""
    result = SendResult()
    in_flight: set[asyncio.Task[None]] = set()
    slots = asyncio.Semaphore(max_in_flight)
    source = _aiter(requests)
    async with client_session(max_in_flight) as session:
        started = time.perf_counter()
        for number in itertools.count():
            due = started + number / rate
            if due - started >= seconds:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            signed = await anext(source, None)
            if signed is None:
                break
            if slots.locked():
                result.late += 1
            await slots.acquire()
            task = asyncio.create_task(_post(session, url, host, signed, result))
            task.add_done_callback(lambda _task: slots.release())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            result.sent += 1
        if in_flight:
            await asyncio.gather(*in_flight)
        result.seconds = time.perf_counter() - started
    return result


async def _aiter(requests: AsyncIterator[Signed] | list[Signed]) -> AsyncIterator[Signed]:
    if isinstance(requests, list):
        for signed in requests:
            yield signed
    else:
        async for signed in requests:
            yield signed


@dataclass(frozen=True)
class Snapshot:
    at: float
    processed: int
    queued: int
    notifications: int
    timeline_entries: int
    oldest_queued_s: float


class Progress:
    """What the worker has done so far, read from the server's database by a connection of our own."""

    def __init__(self, database_url: str) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        self.engine = create_async_engine(database_url, pool_size=1, max_overflow=0)

    async def snapshot(self) -> Snapshot:
        from sqlalchemy import text

        async with self.engine.connect() as connection:
            queued, done = (
                await connection.execute(
                    text(
                        "SELECT sum(CASE WHEN state = 'queued' THEN 1 ELSE 0 END),"
                        " sum(CASE WHEN state <> 'queued' THEN 1 ELSE 0 END) FROM inbox_item"
                    )
                )
            ).one()
            oldest = (
                await connection.execute(
                    text("SELECT min(received_at) FROM inbox_item WHERE state = 'queued'")
                )
            ).scalar()
            notifications = (await connection.execute(text("SELECT count(*) FROM notification"))).scalar()
            timeline = (await connection.execute(text("SELECT count(*) FROM timeline_entry"))).scalar()
        age = 0.0
        if oldest is not None:
            if isinstance(oldest, str):
                oldest = datetime.fromisoformat(oldest)
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            age = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        return Snapshot(
            time.monotonic(),
            int(done or 0),
            int(queued or 0),
            int(notifications or 0),
            int(timeline or 0),
            age,
        )

    async def wait_drained(self, timeout: float) -> Snapshot:
        """Poll until nothing is queued (or `timeout`); the last snapshot."""
        deadline = time.monotonic() + timeout
        while True:
            snapshot = await self.snapshot()
            if snapshot.queued == 0 or time.monotonic() > deadline:
                return snapshot
            await asyncio.sleep(0.25)

    async def aclose(self) -> None:
        await self.engine.dispose()


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
