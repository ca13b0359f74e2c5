"""Security headers: HTML pages stay self-contained (no external scripts, styles or frames), no
response is sniffed into another type, no page may use the camera, microphone or location, and
under HTTPS browsers are told to stay on HTTPS."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Images may come from other servers (remote avatars and media in timelines); nothing else may.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: https: http:; media-src 'self' https: http:; "
    "script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HTML_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
# Herold's pages use no camera, microphone, location, payments or USB devices, and nothing they
# embed may ask for them either. On every response: a document opened directly is a page too.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
EVERY_RESPONSE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"permissions-policy", PERMISSIONS_POLICY.encode()),
]
# Two years, as Mastodon sends. Without includeSubDomains: Herold often runs on the organisation's
# own domain, whose other hosts (an intranet wiki, say) are not ours to force onto HTTPS.
STRICT_TRANSPORT_SECURITY = (b"strict-transport-security", b"max-age=63072000")


class SecurityHeadersMiddleware:
    """Adds the headers above (pure ASGI: no request or response objects are built for it).

    `https`: the instance is served over HTTPS (behind its proxy), so HSTS is sent.
    """

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.always = EVERY_RESPONSE_HEADERS + ([STRICT_TRANSPORT_SECURITY] if https else [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                content_type = next(
                    (value for name, value in headers if name.lower() == b"content-type"), b""
                )
                wanted = self.always + HTML_HEADERS if content_type.startswith(b"text/html") else self.always
                headers.extend(item for item in wanted if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
