"""Ids in the API's paths: digits only, within BIGINT; anything else is not found."""

from __future__ import annotations

import pytest

from app.api.ids import MAX_ID, path_id
from app.http_errors import NotFound


def test_a_path_id_is_plain_digits_within_bigint() -> None:
    assert path_id("42") == 42
    # '²' and '٣' pass str.isdigit(); int() refuses the first and reads the second as 3.
    for odd in ("²", "٣", "", "-1", str(MAX_ID + 1)):
        with pytest.raises(NotFound):
            path_id(odd)
