"""Reading typed values out of Params the way Rails reads Mastodon's: booleans from "true"/"1",
integers from strings, id arrays (`account_ids[]`), and nested attribute arrays
(`keywords_attributes[][keyword]` in a form, a list of objects in JSON). Wrong types are 422s
naming the field."""

from __future__ import annotations

import re
from typing import Any

from app.api.ids import MAX_ID, is_number
from app.api.params import Params, WrongType

TRUE = {"true", "1", "on", "yes", "t"}
FALSE = {"false", "0", "off", "no", "f", ""}
_NESTED = re.compile(r"^(?P<name>\w+)\[(?P<index>\d*)\]\[(?P<field>\w+)\]$")


def flag(params: Params, name: str, default: bool | None = False) -> bool | None:
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    raise WrongType(f"{name}: must be true or false")


def integer(params: Params, name: str, *, minimum: int = 0, maximum: int = 2**31) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise WrongType(f"{name}: must be a number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and is_number(value.strip().removeprefix("-")):
        number = int(value.strip())
    else:
        raise WrongType(f"{name}: must be a number")
    if not minimum <= number <= maximum:
        raise WrongType(f"{name}: must be between {minimum} and {maximum}")
    return number


def nested(params: Params, *path: str) -> Any:
    """A nested parameter as JSON sends it (`{"data": {"policy": …}}`) or as a form does
    (`data[policy]`); None when neither is there."""
    value: Any = params
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            break
    if value is not None:
        return value
    return params.get(path[0] + "".join(f"[{key}]" for key in path[1:]))


def truthy(value: Any) -> bool:
    """A JSON boolean or a form's "true"/"1"/"on" (anything else is false)."""
    return value is True or (isinstance(value, str) and value.strip().lower() in TRUE)


def id_value(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID:
        return value
    if isinstance(value, str) and is_number(value) and 0 < int(value) <= MAX_ID:
        return int(value)
    raise WrongType(f"{name}: must be an id (a string of digits)")


def id_list(params: Params, name: str) -> list[int]:
    value = params.get(f"{name}[]", params.get(name))
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [id_value(item, name) for item in values]


def texts_of(params: Params, name: str) -> list[str] | None:
    """`name[]` or `name` as a list of strings (None when absent)."""
    value = params.get(f"{name}[]", params.get(name))
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in values):
        raise WrongType(f"{name}: must be an array of strings")
    return list(values)


def nested_list(params: Params, name: str) -> list[dict[str, Any]]:
    """`name` as a list of objects: JSON (a list, or an object keyed by index) or form fields
    `name[][field]` (the n-th value of each field makes the n-th object) and `name[0][field]`."""
    value = params.get(name)
    if value is not None:
        if isinstance(value, dict):
            value = [
                value[key] for key in sorted(value, key=lambda key: int(key) if str(key).isdigit() else 0)
            ]
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise WrongType(f"{name}: must be an array of objects")
        return list(value)
    positional: dict[str, list[Any]] = {}
    indexed: dict[int, dict[str, Any]] = {}
    for key, raw in params.items():
        match = _NESTED.match(key)
        if match is None or match["name"] != name:
            continue
        if match["index"]:
            item = raw[0] if isinstance(raw, list) and len(raw) == 1 else raw
            indexed.setdefault(int(match["index"]), {})[match["field"]] = item
        else:
            positional[match["field"]] = raw if isinstance(raw, list) else [raw]
    items = [indexed[index] for index in sorted(indexed)]
    if positional:
        count = max(len(values) for values in positional.values())
        items += [
            {field: values[index] for field, values in positional.items() if index < len(values)}
            for index in range(count)
        ]
    return items


__all__ = ["flag", "id_list", "id_value", "integer", "nested_list", "texts_of"]
