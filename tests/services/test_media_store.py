"""The object store's boto3 client: one per store, however many threads ask for it first."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.config import Settings
from app.services.media_store import S3MediaStore


async def test_threads_asking_at_once_share_one_client(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        s3_bucket="media",
        s3_endpoint="http://127.0.0.1:9",
        s3_access_key_id="key",
        s3_secret_access_key="secret",
        s3_public_url="http://127.0.0.1:9/media",
    )
    store = S3MediaStore(settings)
    clients = await asyncio.gather(*(asyncio.to_thread(store.client) for _ in range(6)))
    assert len({id(client) for client in clients}) == 1
    await store.aclose()
