"""Parameters the account endpoints share: lists of ids in the query, and the account a
person's token acts as. Booleans and single ids are read as everywhere else (app.api.form_values)."""

from __future__ import annotations

from fastapi import Request

from app.api.auth import ApiCaller
from app.api.form_values import id_value
from app.api.params import WrongType
from app.models import Account
from app.services.relationships import MAX_RELATIONSHIPS


def id_list(request: Request, name: str = "id") -> list[int]:
    """`id[]=1&id[]=2` (or `id=1`) in the query, as Mastodon's clients send account ids; at most
    100, as Mastodon allows."""
    values = request.query_params.getlist(f"{name}[]") + request.query_params.getlist(name)
    if len(values) > MAX_RELATIONSHIPS:
        raise WrongType(f"{name}: at most {MAX_RELATIONSHIPS} ids")
    return [id_value(value, name) for value in values]


def acting(caller: ApiCaller) -> Account:
    assert caller.viewer.account is not None  # scoped(user=True) lets only a person's token through
    return caller.viewer.account


__all__ = ["acting", "id_list"]
