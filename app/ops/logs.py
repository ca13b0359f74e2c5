"""Log lines: one per event, as text or JSON (LOG_FORMAT), each carrying its request's id.

The request id comes from a well-formed `X-Request-Id` sent by the proxy (so nginx's log and ours
can be joined) or is made here, and goes back in the response's `X-Request-Id`.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A context variable is per request by nature (each request runs in its own context), so this is
# no shared state: it is how a log record finds the request it was written for.
current_request_id: ContextVar[str | None] = ContextVar("herold_request_id", default=None)

# What we take from a client: ids as proxies and tracing systems make them, nothing that could
# forge log lines or fill the disk.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
TRACE = 5
# Requests that probes make every few seconds: logged at DEBUG, so they do not bury the rest.
_QUIET_PATHS = frozenset({"/health", "/health/ready", "/metrics"})
# A token in a URL's query (streaming apps send it so): the name, then the value to blank.
_TOKEN_IN_URL = re.compile(r"([?&]access_token=)[^&\s\"]+")
# The attributes every LogRecord has; anything else on a record was passed as `extra`.
_STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


def request_id_from(header: str | None) -> str:
    if header and _VALID_REQUEST_ID.fullmatch(header):
        return header
    return secrets.token_hex(16)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        return True


class TokenInUrlFilter(logging.Filter):
    """Blanks `access_token` values in what uvicorn logs: its line for each accepted WebSocket
    carries the URL with its query, where streaming apps put their token (Herold's own access
    line has the path alone)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("uvicorn") and isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_URL.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD_ATTRIBUTES}


class TextFormatter(logging.Formatter):
    """`LEVEL logger [request id] message key=value…`; a traceback stays on the line (as \\n)."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [record.levelname, record.name]
        request_id = getattr(record, "request_id", None)
        if request_id:
            parts.append(f"[{request_id}]")
        parts.append(record.getMessage())
        parts.extend(f"{key}={value}" for key, value in _extras(record).items())
        if record.exc_info:
            parts.append(self.formatException(record.exc_info))
        return " ".join(parts).replace("\r", "\\r").replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class StandardErrorHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to whatever sys.stderr is when a record comes (a test runner swaps it per test)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(log_format: str, level: str) -> None:
    """The process's log output (every command): one handler on the root logger, which uvicorn's
    loggers reach too (`herold serve` gives uvicorn no logging configuration of its own).

    Called again (a command run in-process, as tests do), it replaces its own handler and leaves
    any other (a test runner's) alone.
    """
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, StandardErrorHandler):
            root.removeHandler(existing)
    handler = StandardErrorHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(TokenInUrlFilter())
    root.addHandler(handler)
    # uvicorn's level below DEBUG, which LOG_LEVEL offers too.
    logging.addLevelName(TRACE, "TRACE")
    root.setLevel(level.upper())


class RequestLogMiddleware:
    """Gives each HTTP request its id and writes one access line when it is answered."""

    def __init__(self, app: ASGIApp, observe: Callable[[Scope, int, float], None] | None = None) -> None:
        self.app = app
        # Called as observe(scope, status, seconds) after each request (the metrics hook).
        self.observe = observe
        self.log = logging.getLogger("herold.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = request_id_from(incoming)
        token = current_request_id.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            path = scope.get("path", "")
            self.log.log(
                logging.DEBUG if path in _QUIET_PATHS else logging.INFO,
                "%s %s %d",
                scope.get("method", ""),
                path,
                status,
                extra={"status": status, "duration_ms": round(seconds * 1000, 1)},
            )
            if self.observe is not None:
                self.observe(scope, status, seconds)
            current_request_id.reset(token)
