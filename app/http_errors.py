"""HTTP errors raised by routes, and how every error is answered: JSON or HTML as the client asked.

Nothing a client sends may produce a 500: malformed input is a 400 that says what is wrong.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.activitypub.negotiation import prefers_json
from app.activitypub.verification import KeyFetchesBusy
from app.services import errors as service_errors
from app.services.media_store import MediaStoreError

log = logging.getLogger(__name__)

# Seconds a client is asked to wait when the server is saturated (database pool, key fetches).
BUSY_RETRY_AFTER = 5
BUSY_MESSAGE = "the server is busy; retry in a few seconds"
# Seconds an app waits before uploading again when the media store (a disk, a bucket) failed.
MEDIA_STORE_RETRY_AFTER = 30


class HttpError(Exception):
    status_code = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(HttpError):
    status_code = 400


class Unauthorized(HttpError):
    status_code = 401


class Forbidden(HttpError):
    status_code = 403


class NotFound(HttpError):
    status_code = 404


class PayloadTooLarge(HttpError):
    status_code = 413


class UnsupportedMediaType(HttpError):
    status_code = 415


class TooManyRequests(HttpError):
    status_code = 429


# The client API and the OAuth endpoints apps call answer Mastodon's way whatever the Accept header:
# always {"error": "…"}, and 422 for input that does not validate.
API_PATH_PREFIXES = ("/api/", "/oauth/token", "/oauth/revoke")


def is_api_request(request: Request) -> bool:
    return request.url.path.startswith(API_PATH_PREFIXES)


def error_response(
    request: Request, status_code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    if is_api_request(request) or prefers_json(request.headers.get("accept")):
        return JSONResponse({"error": message}, status_code=status_code, headers=headers)
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status_code": status_code, "message": message},
        status_code=status_code,
        headers=headers,
    )


def service_error_status(error: service_errors.ServiceError) -> int:
    """The HTTP status of a service's refusal: the one mapping every HTTP surface shares."""
    if isinstance(error, service_errors.NotFound):
        return 404
    if isinstance(error, service_errors.Forbidden):
        return 403
    if isinstance(error, service_errors.RateLimited):
        return 429
    return 400


def _status_for(request: Request, error: service_errors.ServiceError) -> int:
    status = service_error_status(error)
    # Mastodon answers validation failures with 422 Unprocessable Entity.
    return 422 if status == 400 and is_api_request(request) else status


def _describe_validation(error: RequestValidationError) -> str:
    problems = []
    for item in error.errors():
        location = ".".join(
            str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path")
        )
        problems.append(f"{location or 'request'}: {item.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"


def busy_response(request: Request, error: Exception) -> Response:
    """Every database connection busy for DATABASE_POOL_TIMEOUT, or too many first-contact key
    fetches waiting: the load is shed with 503 and Retry-After, and the client comes back."""
    log.warning(
        "saturated on %s %s (%s); answered 503", request.method, request.url.path, type(error).__name__
    )
    return error_response(request, 503, BUSY_MESSAGE, {"Retry-After": str(BUSY_RETRY_AFTER)})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HttpError)
    async def _http_error(request: Request, error: HttpError) -> Response:
        return error_response(request, error.status_code, error.message, error.headers)

    @app.exception_handler(service_errors.ServiceError)
    async def _service_error(request: Request, error: service_errors.ServiceError) -> Response:
        headers = error.headers if isinstance(error, service_errors.RateLimited) else None
        return error_response(request, _status_for(request, error), error.message, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request: Request, error: StarletteHTTPException) -> Response:
        message = str(error.detail)
        if error.status_code == 404 and message == "Not Found":
            message = f"nothing here at {request.url.path}"
        return error_response(request, error.status_code, message, dict(error.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> Response:
        status = 422 if is_api_request(request) else 400
        return error_response(request, status, _describe_validation(error))

    @app.exception_handler(MediaStoreError)
    async def _media_store_error(request: Request, error: MediaStoreError) -> Response:
        log.error("media store failed on %s %s: %s", request.method, request.url.path, error)
        return error_response(
            request,
            503,
            "the file could not be stored right now; try again in a while",
            {"Retry-After": str(MEDIA_STORE_RETRY_AFTER)},
        )

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(KeyFetchesBusy)
    async def _saturated(request: Request, error: Exception) -> Response:
        return busy_response(request, error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        if isinstance(error, PoolTimeout | KeyFetchesBusy):
            # Raised in a middleware (the session's user lookup), outside the handlers above.
            return busy_response(request, error)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal error; it has been logged")


__all__ = [
    "BadRequest",
    "Forbidden",
    "HTMLResponse",
    "HttpError",
    "NotFound",
    "PayloadTooLarge",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "error_response",
    "install_error_handlers",
    "is_api_request",
    "service_error_status",
]
