"""Typed values out of the API's parameters: what is not a number is a 422 naming the field."""

from __future__ import annotations

import pytest

from app.api.form_values import id_value, integer
from app.api.params import Params, WrongType


def test_numbers_and_ids_are_ascii_digits() -> None:
    assert integer(Params(limit="-5"), "limit", minimum=-10) == -5
    assert id_value("12", "id") == 12
    # '²' passes str.isdigit() and '--5'.lstrip('-') is digits; int() refuses both.
    for odd in ("²", "--5"):
        with pytest.raises(WrongType, match="limit"):
            integer(Params(limit=odd), "limit")
    with pytest.raises(WrongType, match="id"):
        id_value("²", "id")
