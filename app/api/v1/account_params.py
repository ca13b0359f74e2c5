"""Parameters the account endpoints share: booleans as apps send them, lists of ids, and the
account a person's token acts as."""

from __future__ import annotations

from fastapi import Request

from app.api.auth import ApiCaller
from app.api.ids import MAX_ID
from app.api.params import Params, WrongType
from app.models import Account
from app.services.relationships import MAX_RELATIONSHIPS

TRUE_WORDS = ("true", "1", "on", "yes")
FALSE_WORDS = ("false", "0", "off", "no", "")


def flag(params: Params, name: str, default: bool | None = None) -> bool | None:
    """A boolean as apps send it (JSON true, "true", "1", "on"); `default` when absent."""
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = (params.text(name) or "").lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise WrongType(f"{name}: must be true or false")


def id_list(request: Request, name: str = "id") -> list[int]:
    """`id[]=1&id[]=2` (or `id=1`), as Mastodon's clients send account ids; at most 100."""
    values = request.query_params.getlist(f"{name}[]") + request.query_params.getlist(name)
    if len(values) > MAX_RELATIONSHIPS:
        raise WrongType(f"{name}: at most {MAX_RELATIONSHIPS} ids")
    ids = []
    for value in values:
        if not value.isdigit() or int(value) > MAX_ID:
            raise WrongType(f"{name}: {value[:40]!r} is not an id")
        ids.append(int(value))
    return ids


def acting(caller: ApiCaller) -> Account:
    assert caller.viewer.account is not None  # scoped(user=True) lets only a person's token through
    return caller.viewer.account


__all__ = ["FALSE_WORDS", "TRUE_WORDS", "acting", "flag", "id_list"]
