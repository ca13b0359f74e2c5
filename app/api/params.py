"""Parameters as Mastodon's clients send them: a query string, a form or a JSON body (Elk sends
JSON, Tusky a form, some versions of Ice Cubes only a query string), merged with the body first."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from app.http_errors import BadRequest, UnsupportedMediaType

MAX_BODY = 64 * 1024


class Params(dict[str, Any]):
    def text(self, name: str) -> str | None:
        """A single string value; 422 naming the field when it is something else."""
        value = self.get(name)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
            return value[0]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise WrongType(f"{name}: must be a string")

    def texts(self, name: str) -> list[str]:
        """A string or an array of strings (`name` or `name[]`); a string splits on newlines."""
        value = self.get(name, self.get(f"{name}[]"))
        if value is None:
            return []
        if isinstance(value, str):
            return [line for line in value.splitlines() if line.strip()]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value)
        raise WrongType(f"{name}: must be a string or an array of strings")


class WrongType(BadRequest):
    status_code = 422


async def request_params(request: Request) -> Params:
    params = Params()
    for key in request.query_params:
        values = request.query_params.getlist(key)
        params[key] = values if key.endswith("[]") or len(values) > 1 else values[0]
    if request.method in ("GET", "HEAD"):
        return params
    body = await request.body()
    if len(body) > MAX_BODY:
        raise BadRequest("request body too large")
    if not body.strip():
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or (not content_type and body.lstrip()[:1] == b"{"):
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise WrongType("the JSON body must be an object")
        params.update(data)
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        for key in form:
            values = [value for value in form.getlist(key) if isinstance(value, str)]
            params[key] = values if key.endswith("[]") or len(values) > 1 else (values[0] if values else None)
    else:
        raise UnsupportedMediaType(f"unsupported content type {content_type!r}")
    return params


__all__ = ["Params", "WrongType", "request_params"]
