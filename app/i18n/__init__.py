"""The languages the web interface speaks, and how one is chosen for a request.

Source strings are English; other languages live in gettext catalogs under `locale/`
(`python -m app.i18n` extracts, merges and compiles them; the compiled `.mo` files are committed,
so installing Herold needs no build step).
"""

from __future__ import annotations

import gettext as stdlib_gettext
from pathlib import Path

from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
DEFAULT_LOCALE = "en"
# Locale code → the language's own name, as offered in the settings.
LOCALE_NAMES = {"en": "English", "de": "Deutsch"}
SUPPORTED_LOCALES = tuple(LOCALE_NAMES)


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown."""
    return message


def supported(locale: str | None) -> str | None:
    """The supported locale for a tag like `de-AT` or `en_GB`, or None."""
    if not locale:
        return None
    primary = locale.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LOCALE_NAMES else None


def negotiate(accept_language: str | None) -> str:
    """The best supported locale for an Accept-Language header (RFC 9110 quality values)."""
    if not accept_language:
        return DEFAULT_LOCALE
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:32]):
        pieces = part.strip().split(";")
        tag = pieces[0].strip()
        quality = 1.0
        for parameter in pieces[1:]:
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        locale = supported(tag)
        if locale and quality > 0:
            choices.append((-quality, position, locale))
    return min(choices)[2] if choices else DEFAULT_LOCALE


class Catalogs:
    """The compiled catalogs, loaded once per app."""

    def __init__(self, locale_dir: Path = LOCALE_DIR) -> None:
        self._translations: dict[str, stdlib_gettext.NullTranslations] = {DEFAULT_LOCALE: NullTranslations()}
        for locale in SUPPORTED_LOCALES:
            if locale != DEFAULT_LOCALE:
                self._translations[locale] = Translations.load(str(locale_dir), [locale], DOMAIN)

    def get(self, locale: str | None) -> stdlib_gettext.NullTranslations:
        return self._translations.get(locale or DEFAULT_LOCALE) or self._translations[DEFAULT_LOCALE]

    def gettext(self, locale: str | None, message: str) -> str:
        return self.get(locale).gettext(message)

    def ngettext(self, locale: str | None, singular: str, plural: str, number: int) -> str:
        return self.get(locale).ngettext(singular, plural, number)
