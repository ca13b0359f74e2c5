"""Log lines as an operator's collector reads them: one per event, JSON on request, with request ids."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import httpx

from app.ops.logs import RequestIdFilter, TextFormatter, TokenInUrlFilter, current_request_id
from tests.lab import DatabaseFactory, Instance
from tests.processes import ServerProcess, free_port, herold_env


async def test_request_id_is_taken_from_a_valid_header_or_made(instance: Instance) -> None:
    given = await instance.client.get("/health", headers={"X-Request-Id": "nginx-5f2a9c"})
    assert given.headers["x-request-id"] == "nginx-5f2a9c"
    made = await instance.client.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    # Something that could forge a log line or fill it is replaced, not echoed.
    for bad in ("two words", "x" * 200, "a\\nb"):
        answer = await instance.client.get("/health", headers={"X-Request-Id": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])
    # Every answer has one, errors too.
    missing = await instance.client.get("/no/such/page")
    assert missing.status_code == 404
    assert missing.headers["x-request-id"]


def test_a_token_in_a_websocket_url_is_not_logged() -> None:
    """uvicorn logs each accepted WebSocket with its URL, where streaming apps put their token."""
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/api/v1/streaming?stream=user&access_token=Zx9-secret_token"),
        None,
    )
    assert TokenInUrlFilter().filter(record)
    line = record.getMessage()
    assert "Zx9-secret_token" not in line
    assert (
        line
        == '127.0.0.1:5000 - "WebSocket /api/v1/streaming?stream=user&access_token=[redacted]" [accepted]'
    )


def test_text_lines_keep_a_traceback_on_the_line() -> None:
    formatter = TextFormatter()
    try:
        raise ValueError("broken\nin two")
    except ValueError:
        record = logging.LogRecord(
            "herold.test", logging.ERROR, __file__, 1, "it %s", ("failed",), sys.exc_info()
        )
    token = current_request_id.set("req-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        current_request_id.reset(token)
    line = formatter.format(record)
    assert "\n" not in line
    assert line.startswith("ERROR herold.test [req-1] it failed Traceback")
    assert "ValueError: broken\\nin two" in line


async def test_serve_writes_json_lines_with_the_request_id(
    tmp_path: Path, databases: DatabaseFactory
) -> None:
    port = free_port()
    env = herold_env(tmp_path / "data", await databases.new_database_url(), PORT=str(port), LOG_FORMAT="json")
    server = ServerProcess(["serve"], env, tmp_path / "serve.log")
    try:
        base = f"http://127.0.0.1:{port}"
        server.wait_http(f"{base}/health")
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            given = await client.get("/about", headers={"X-Request-Id": "lb-0001"})
            made = await client.get("/@nobody")
        assert given.headers["x-request-id"] == "lb-0001"
        made_id = made.headers["x-request-id"]
    finally:
        server.stop()
    lines = [line for line in server.output().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(
        "Uvicorn running" in entry["message"] or "Application startup" in entry["message"]
        for entry in entries
    )
    access = {entry["request_id"]: entry for entry in entries if entry["logger"] == "herold.access"}
    assert access["lb-0001"]["message"] == "GET /about 200"
    assert access["lb-0001"]["status"] == 200
    assert access[made_id]["status"] == made.status_code == 404
    assert isinstance(access[made_id]["duration_ms"], float)
