"""Everything one running Herold instance holds: settings, database, caches, HTTP client.

`create_app` and the CLI each build one; nothing lives at module level, so one process can run
several instances side by side (the federation test lab does).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app import __version__
from app.activitypub.signatures import KeyCache
from app.activitypub.signing_process import SigningProcess
from app.activitypub.transport import build_client, build_transport
from app.config import Settings
from app.db import (
    EngineRole,
    SessionFactory,
    create_engine,
    create_session_factory,
    create_write_engine,
    sync_session_class,
)
from app.federation.signals import WorkSignals
from app.ops.background_cpu import BackgroundCpu
from app.ops.event_channel import EventChannel, ProcessKind, close_channel, open_channel
from app.ops.metrics_registry import Metrics
from app.public_cache import PublicCache
from app.queue_names import JOBS_QUEUE, WAKE_JOBS_INFO_KEY
from app.services.events import EventBus
from app.services.kept_callers import KeptCallers, watch_writes
from app.services.kept_filters import KeptFilters
from app.services.media_store import MediaStore, build_media_store
from app.services.moderation import DomainPolicyView
from app.services.rate_limits import RateLimits
from app.services.renderings import Renderings
from app.services.vapid_keys import VapidKeys
from app.urls import LocalUrls

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    settings: Settings
    urls: LocalUrls
    engine: AsyncEngine
    sessions: SessionFactory
    http: httpx.AsyncClient
    keys: KeyCache = field(default_factory=KeyCache)
    # Deliveries' RSA signatures, made in a child process (started with the worker).
    signer: SigningProcess = field(default_factory=SigningProcess)
    work: WorkSignals = field(default_factory=WorkSignals)
    # Guards the one-time first-admin form; printed on the console at start-up.
    setup_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    rate_limits: RateLimits = field(default_factory=RateLimits)
    # What committed transactions wrote (timeline entries, notifications, edits, deletions), for
    # whoever listens: streaming and Web Push.
    events: EventBus = field(default_factory=EventBus)
    metrics: Metrics = field(default_factory=Metrics)
    # The key that signs Web Push messages (loaded from the database once).
    vapid: VapidKeys = field(default_factory=VapidKeys)
    # Blocks and allowlist as one snapshot: asked by inbox, delivery, fetches and timelines.
    domain_policy: DomainPolicyView = field(init=False)
    # Ready answers for anonymous readers (PUBLIC_CACHE_MB), dropped by the events above.
    public_cache: PublicCache = field(init=False)
    # What each post and account looks like to every reader (the client API's statuses without
    # the reader's flags, its accounts), kept per post version and dropped by the events above.
    renderings: Renderings = field(default_factory=Renderings)
    # Bearer tokens resolved (who each speaks for), dropped by every write to what they are made of.
    callers: KeptCallers = field(default_factory=KeptCallers)
    # Each reader's content filters, compiled, dropped by FiltersChanged.
    filters: KeptFilters = field(default_factory=KeptFilters)
    # Pillow's work that nobody waits for (the worker copying remote media): few threads, nice 10.
    background_cpu: BackgroundCpu = field(default_factory=BackgroundCpu)
    # Carries `events` and `work` to and from the instance's other processes, once opened.
    channel: EventChannel | None = None
    # The worker heartbeat's own connection (a pool of one, opened on its first beat): a beat never
    # waits behind the jobs and requests that share `engine`.
    heartbeat_engine: AsyncEngine | None = None
    heartbeat_sessions: SessionFactory = field(init=False)
    # Where media files are kept: DATA_DIR/media or the S3-compatible bucket the settings name.
    media: MediaStore = field(init=False)
    # For app.db.write_session: short write transactions on the busiest paths (inbox rows, the
    # worker's claims and batches). On SQLite a connection of its own (see create_write_engine);
    # elsewhere `engine`.
    write_engine: AsyncEngine = field(init=False)
    write_sessions: SessionFactory = field(init=False)

    def __post_init__(self) -> None:
        self.media = build_media_store(self.settings, self.urls.base)
        self.domain_policy = DomainPolicyView(self.sessions, self.settings)
        if self.heartbeat_engine is None:
            self.heartbeat_engine = create_engine(self.settings, "heartbeat")
        self.heartbeat_sessions = create_session_factory(self.heartbeat_engine)
        self.write_engine = create_write_engine(self.settings, self.engine)
        self.write_sessions = (
            self.sessions if self.write_engine is self.engine else create_session_factory(self.write_engine)
        )
        # Every session of this instance finds the instance's bus in its `info` (app.services.events).
        info = {**self.events.session_info(), WAKE_JOBS_INFO_KEY: lambda: self.work.notify(JOBS_QUEUE)}
        self.sessions.configure(info=info)
        self.write_sessions.configure(info=info)
        for factory in {
            id(self.sessions): self.sessions,
            id(self.write_sessions): self.write_sessions,
        }.values():
            watch_writes(sync_session_class(factory))
        self.public_cache = PublicCache(limit_bytes=self.settings.public_cache_mb * 1024 * 1024)
        if self.public_cache.enabled:
            self.events.subscribe(self.public_cache.on_event)
        self.events.subscribe(self.renderings.on_event)
        self.events.subscribe(self.callers.on_event)
        self.events.subscribe(self.filters.on_event)

    @property
    def user_agent(self) -> str:
        return user_agent(self.settings)

    async def open_channel(self, kind: ProcessKind) -> None:
        """Connect this process's events and wake-ups with the instance's other processes
        (app.ops.event_channel): `herold serve`, `herold worker` and the CLI each do at start."""
        if self.channel is None:
            try:
                self.channel = await open_channel(self.settings, self.events, self.work, kind)
            except OSError as error:
                # Not worth refusing to start over: without it, other processes' listeners hear
                # this one's events late or not at all, and workers find its jobs at their next poll.
                log.warning("events between processes are off: %s", error)

    async def aclose(self) -> None:
        if self.channel is not None:
            # First: what the last commits announced still leaves.
            await close_channel(self.channel, self.events, self.work)
            self.channel = None
        await self.signer.aclose()
        self.background_cpu.close()
        await self.media.aclose()
        await self.http.aclose()
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
        if self.heartbeat_engine is not None:
            await self.heartbeat_engine.dispose()


def user_agent(settings: Settings) -> str:
    return f"herold/{__version__} (+{settings.base_url}/)"


def build_context(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None, role: EngineRole = "serve"
) -> AppContext:
    """`transport` replaces the network: the test lab routes requests between in-process instances.
    `role` (web server, worker, one-off command) sizes the database pool."""
    engine = create_engine(settings, role)
    if transport is None:
        transport = build_transport(
            allowed_private=settings.allowed_private_addresses,
            extra_ca_certificates=settings.extra_ca_certificates,
        )
    return AppContext(
        settings=settings,
        urls=LocalUrls.from_settings(settings),
        engine=engine,
        sessions=create_session_factory(engine),
        http=build_client(transport=transport, user_agent=user_agent(settings)),
    )
