"""What every client API answer carries, as Mastodon sends it: CORS for any origin and the
X-RateLimit-* headers (300 requests in 5 minutes per token, or per address without one; 429 over).

Pure ASGI, on the API's paths only: the web pages keep their same-origin rules.
"""

from __future__ import annotations

import hashlib
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.context import AppContext

# Paths browsers' apps (Elk, Phanpy) call from other origins.
CORS_PREFIXES = ("/api/", "/oauth/token", "/oauth/revoke", "/.well-known/")
RATE_LIMITED_PREFIXES = ("/api/", "/oauth/token", "/oauth/revoke")
CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (
        b"access-control-expose-headers",
        b"Link, X-RateLimit-Reset, X-RateLimit-Limit, X-RateLimit-Remaining, X-Request-Id",
    ),
]
PREFLIGHT_HEADERS = [
    *CORS_HEADERS,
    (b"access-control-allow-methods", b"POST, PUT, DELETE, GET, PATCH, OPTIONS"),
    (
        b"access-control-allow-headers",
        b"Authorization, Content-Type, Idempotency-Key, Accept, X-Requested-With",
    ),
    (b"access-control-max-age", b"1728000"),
    (b"vary", b"Origin"),
]


def _rate_key(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            # A hash, so the limiter's memory holds no usable token.
            return "token:" + hashlib.sha256(value[7:].strip()).hexdigest()
    client = scope.get("client")
    return f"address:{client[0] if client else 'unknown'}"


class ClientApiMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(CORS_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers_of = {name: value for name, value in scope.get("headers", [])}
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers_of:
            await send({"type": "http.response.start", "status": 200, "headers": PREFLIGHT_HEADERS})
            await send({"type": "http.response.body", "body": b""})
            return
        extra = list(CORS_HEADERS)
        if path.startswith(RATE_LIMITED_PREFIXES):
            context: AppContext = scope["app"].state.context
            decision = context.rate_limits.api_requests.hit(_rate_key(scope))
            extra += [(name.lower().encode(), value.encode()) for name, value in decision.headers().items()]
            if not decision.allowed:
                body = json.dumps({"error": "Too many requests"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 429,
                        "headers": [
                            *extra,
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in extra if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


__all__ = ["ClientApiMiddleware"]
