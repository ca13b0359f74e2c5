"""The federation test lab: several Herold instances in one process, talking HTTP to each other.

Each instance is a real app with its own database; requests between them go through
`HostRoutingTransport`, an httpx transport that hands each request to the app serving its
host. Only the network itself is replaced: signatures, content negotiation and every handler
run exactly as they would between machines.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.types import ASGIApp

from app.config import Settings
from app.context import AppContext
from app.main import app_context, create_app
from app.migrations import upgrade_database


class HostRoutingTransport(httpx.AsyncBaseTransport):
    """Routes each request to the in-process app registered for its host (with port)."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}
        self.requests: list[httpx.Request] = []

    def register(self, host: str, app: ASGIApp) -> None:
        self.apps[host] = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.netloc.decode()
        self.requests.append(request)
        target = self.apps.get(host)
        if target is None:
            raise httpx.ConnectError(f"no lab host {host}", request=request)
        return await target.handle_async_request(request)


class DatabaseFactory:
    """Fresh, migrated databases, fast: migrate once, then copy (SQLite) or clone a template (PostgreSQL)."""

    def __init__(self, workdir: Path, postgres_url: str | None) -> None:
        self.workdir = workdir
        self.postgres_url = postgres_url
        self._template: str | None = None
        self._created: list[str] = []

    async def prepare(self) -> None:
        if self._template is not None:
            return
        if self.postgres_url:
            name = f"herold_tpl_{uuid.uuid4().hex[:10]}"
            await self._admin(f'CREATE DATABASE "{name}"')
            self._created.append(name)
            await upgrade_database(self._settings(self._pg_url(name), self.workdir / "template"))
            self._template = name
        else:
            path = self.workdir / "template.db"
            await upgrade_database(self._settings(f"sqlite+aiosqlite:///{path}", self.workdir / "template"))
            self._template = str(path)

    async def new_database_url(self) -> str:
        await self.prepare()
        assert self._template is not None
        if self.postgres_url:
            name = f"herold_t_{uuid.uuid4().hex[:12]}"
            await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
            self._created.append(name)
            return self._pg_url(name)
        path = self.workdir / f"{uuid.uuid4().hex[:12]}.db"
        shutil.copyfile(self._template, path)
        return f"sqlite+aiosqlite:///{path}"

    async def new_empty_database_url(self) -> str:
        """A PostgreSQL database with no schema at all (SQLite needs only a new file name)."""
        name = f"herold_e_{uuid.uuid4().hex[:12]}"
        await self._admin(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return self._pg_url(name)

    async def cleanup(self) -> None:
        # Concurrently: one DROP DATABASE takes most of a second on PostgreSQL.
        clones, templates = self._created[1:], self._created[:1]
        slots = asyncio.Semaphore(8)  # stay far below PostgreSQL's connection limit

        async def drop(name: str) -> None:
            async with slots:
                await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        await asyncio.gather(*(drop(name) for name in clones))
        for name in templates:
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created.clear()

    def _pg_url(self, database: str) -> str:
        assert self.postgres_url
        return self.postgres_url.rsplit("/", 1)[0] + f"/{database}"

    async def _admin(self, statement: str) -> None:
        assert self.postgres_url
        engine = create_async_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    @staticmethod
    def _settings(database_url: str, data_dir: Path) -> Settings:
        return Settings(
            _env_file=None,
            database_url=database_url,
            data_dir=data_dir,
            secret_key="test-secret-key-of-the-lab-instance",
        )  # type: ignore[call-arg]


@dataclass
class Instance:
    domain: str
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings

    @property
    def context(self) -> AppContext:
        return app_context(self.app)

    @property
    def base_url(self) -> str:
        return self.settings.base_url


@dataclass
class Lab:
    databases: DatabaseFactory
    workdir: Path
    network: HostRoutingTransport = field(default_factory=HostRoutingTransport)
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    instances: dict[str, Instance] = field(default_factory=dict)

    async def instance(self, domain: str, **overrides: Any) -> Instance:
        """Start an instance serving `domain` (handles @user@domain), reachable from the others."""
        data_dir = self.workdir / domain.replace(":", "_")
        values: dict[str, Any] = {
            "local_domain": domain,
            "https": False,
            "database_url": await self.databases.new_database_url(),
            "data_dir": data_dir,
            "secret_key": f"secret-key-of-the-lab-instance-{domain}",
            "allowed_private_addresses": [],
        }
        values.update(overrides)
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        app = create_app(settings, transport=self.network)
        await self.stack.enter_async_context(app.router.lifespan_context(app))
        self.network.register(settings.web_domain, app)
        if settings.local_domain != settings.web_domain:
            # Handles on a main domain: its web server redirects discovery to WEB_DOMAIN, as Herold does itself.
            self.network.register(settings.local_domain, app)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.base_url)
        self.stack.push_async_callback(client.aclose)
        instance = Instance(domain=domain, app=app, client=client, settings=settings)
        self.instances[domain] = instance
        return instance


@asynccontextmanager
async def running_lab(workdir: Path, databases: DatabaseFactory) -> AsyncIterator[Lab]:
    lab = Lab(databases=databases, workdir=workdir)
    async with lab.stack:
        yield lab
