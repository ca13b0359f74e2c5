"""JSON text in and out for the hot paths: what peers deliver to the inbox, and the database's JSON
columns (activities queued and received), which every delivery writes and the worker reads.

orjson (a well-kept Rust extension, already used for the API's answers) parses and writes JSON
several times faster than the standard library. Where it refuses what the standard library
takes (integers beyond 64 bits, which JSON allows and a peer may send), the standard library
does the work, so nothing valid is refused and errors read as before.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """Compact JSON text, UTF-8 characters as they are."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """The value of JSON text; invalid text raises ValueError (or RecursionError), as json.loads."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # Either invalid (json.loads raises the error the callers report) or valid beyond what
        # orjson takes.
        return json.loads(text)
