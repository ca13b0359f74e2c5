"""Shared fixtures. TEST_DATABASE_URL=postgresql+asyncpg://… runs every database test on PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from argon2 import PasswordHasher
from moto.server import ThreadedMotoServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.activitypub.keys import generate_key_pair
from app.services import accounts as account_service
from app.services import passwords
from tests.lab import DatabaseFactory, Instance, Lab, running_lab

# argon2id still, but at its lowest cost: ~0.1 ms a hash instead of ~0.2 s, which the tests paid
# for nearly every account they made. Hashes made with it verify as any other argon2 hash.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords hashed at the lowest cost, except in tests marked `real_password_hashing` (the one
    that pins what production stores)."""
    if request.node.get_closest_marker("real_password_hashing") is None:
        monkeypatch.setattr(passwords, "HASHER", CHEAP_HASHER)


@functools.cache
def _local_key_pair(index: int) -> tuple[str, str]:
    return generate_key_pair()


@pytest.fixture(autouse=True)
def reused_key_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local actors' RSA key pairs, made once per run (one takes ~60 ms) and handed out again in
    every test: within a test each actor still has a pair of its own, which is what signatures
    between them rely on."""
    handed_out = itertools.count()
    monkeypatch.setattr(account_service, "generate_key_pair", lambda: _local_key_pair(next(handed_out)))


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    """Migrated once per run; every instance then gets a copy (SQLite) or a clone (PostgreSQL)."""
    factory = DatabaseFactory(
        tmp_path_factory.mktemp("databases"), os.environ.get("TEST_DATABASE_URL") or None
    )
    asyncio.run(factory.prepare())
    try:
        yield factory
    finally:
        asyncio.run(factory.cleanup())


@pytest.fixture
async def lab(tmp_path: Path, databases: DatabaseFactory) -> AsyncIterator[Lab]:
    async with running_lab(tmp_path, databases) as running:
        yield running


@pytest.fixture
async def instance(lab: Lab) -> Instance:
    """One instance on a.test (plain http, as the loopback lab runs)."""
    return await lab.instance("a.test")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 HTTP endpoint on a loopback port (moto's server), for the object-store media tests."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_media_settings(s3_endpoint: str) -> dict[str, str]:
    """Settings of an instance keeping its media in a new, empty bucket of the test S3 server."""
    bucket = f"media-{secrets.token_hex(8)}"
    settings = {
        "s3_endpoint": s3_endpoint,
        "s3_bucket": bucket,
        "s3_region": "eu-central-1",
        "s3_access_key_id": "test-key",
        "s3_secret_access_key": "test-secret",
        "s3_public_url": f"{s3_endpoint}/{bucket}",
    }
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="eu-central-1",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
    )
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    # Readable by anyone, as the README tells administrators to set their bucket up.
    client.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{bucket}/*",
                    }
                ],
            }
        ),
    )
    return settings


@pytest.fixture(params=["disk", "s3"])
def media_store_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings keeping media on disk (none needed), then in a bucket of the test S3 server: media
    tests take it to prove both stores behave alike to apps and peers."""
    if request.param == "s3":
        settings: dict[str, str] = request.getfixturevalue("s3_media_settings")
        return settings
    return {}


@pytest.fixture
async def media_instance(lab: Lab, media_store_settings: dict[str, str]) -> Instance:
    """The instance on a.test, with each media store in turn."""
    return await lab.instance("a.test", **media_store_settings)


def s3_gateway(endpoint: str) -> Starlette:
    """An app passing reads on to the S3 server: a lab host standing in for the bucket's public
    address (a CDN in front of it), so that other lab instances fetch from it as from the internet."""

    async def forward(request: Request) -> Response:
        async with httpx.AsyncClient() as client:
            answer = await client.request(request.method, f"{endpoint}{request.url.path}")
        kept = {
            name: answer.headers[name]
            for name in ("content-type", "cache-control", "etag")
            if name in answer.headers
        }
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "HEAD"])])


@pytest.fixture
def lab_media_store_settings(lab: Lab, media_store_settings: dict[str, str]) -> dict[str, str]:
    """media_store_settings for a.test among other lab instances: in S3 mode the bucket is read at
    http://media.a.test/<bucket>/…, a host of the lab network."""
    if not media_store_settings:
        return {}
    lab.network.register("media.a.test", s3_gateway(media_store_settings["s3_endpoint"]))
    return {
        **media_store_settings,
        "s3_public_url": f"http://media.a.test/{media_store_settings['s3_bucket']}",
    }
