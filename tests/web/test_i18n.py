"""The interface speaks English and German: catalogs complete and compiled, language negotiation."""

from __future__ import annotations

import pytest

from app.i18n import Catalogs, negotiate, supported
from app.i18n.__main__ import main as i18n_tool
from tests.lab import Instance
from tests.web.helpers import BROWSER


def test_catalogs_are_complete_and_compiled(capsys: pytest.CaptureFixture[str]) -> None:
    """Every marked string has a German translation and the committed .mo matches the .po."""
    status = i18n_tool(["--check"])
    assert status == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("de", "de"),
        ("de-AT,de;q=0.9", "de"),
        ("fr-CH, fr;q=0.9, de;q=0.8, en;q=0.7", "de"),
        ("en-US,en;q=0.9,de;q=0.8", "en"),
        ("de;q=0.5, en;q=0.6", "en"),
        ("de;q=0", "en"),
        ("*", "en"),
        ("de;q=bogus, en", "en"),
        (",,;;=", "en"),
    ],
)
def test_accept_language_negotiation(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_supported_locales() -> None:
    assert supported("de_DE") == "de"
    assert supported("EN-gb") == "en"
    assert supported("fr") is None
    assert supported(None) is None


def test_catalogs_translate_and_fall_back() -> None:
    catalogs = Catalogs()
    assert catalogs.gettext("de", "Log in") == "Anmelden"
    assert catalogs.gettext("en", "Log in") == "Log in"
    assert catalogs.gettext("xx", "Log in") == "Log in"
    assert catalogs.ngettext("de", "post", "posts", 2) == "Beiträge"


async def test_public_pages_and_errors_speak_german(instance: Instance) -> None:
    german = {**BROWSER, "Accept-Language": "de"}
    about = await instance.client.get("/about", headers=german)
    assert '<html lang="de">' in about.text
    assert "Datenschutzerklärung" in about.text
    missing = await instance.client.get("/@nobody", headers=german)
    assert missing.status_code == 404
    assert "Nicht gefunden" in missing.text
