"""A service's refusal is answered once per surface: the HTTP status and JSON message here."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.http_errors import install_error_handlers
from app.services.errors import Forbidden, Invalid, NotFound, RateLimited, ServiceError
from app.services.posting import PostingError, PostNotFound


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("no post 1 is known here"), 404),
        (PostNotFound("no post 1 is known here"), 404),
        (Forbidden("you may not act as @knnktv"), 403),
        (Invalid("the post is 600 characters long; the limit is 500"), 400),
        (PostingError("a post needs some text"), 400),
        (RateLimited("too many posts", headers={"Retry-After": "60"}), 429),
    ],
)
async def test_each_refusal_has_its_status_and_says_why(error: ServiceError, status: int) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/refuse")
    async def refuse() -> None:
        raise error

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a.test") as client:
        response = await client.get("/refuse", headers={"Accept": "application/json"})
    assert response.status_code == status
    assert response.json() == {"error": error.message}
    if isinstance(error, RateLimited):
        assert response.headers["Retry-After"] == "60"
