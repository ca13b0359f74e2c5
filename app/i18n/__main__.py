"""Keep the translations in step with the code: `python -m app.i18n [--check]`.

Extracts every marked string from templates and web code, merges it into each language's `.po`
file (new strings appear untranslated, removed ones become obsolete), and compiles the `.mo`
files the server loads. `--check` changes nothing and fails when a string lacks a translation or
a compiled catalog is stale, which the test suite runs.
"""

from __future__ import annotations

import argparse
import io
import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from app.i18n import DEFAULT_LOCALE, DOMAIN, LOCALE_DIR, SUPPORTED_LOCALES

ROOT = LOCALE_DIR.parents[2]
METHOD_MAP = [
    ("app/web/**.py", "python"),
    ("app/i18n/__init__.py", "python"),
    ("templates/**.html", "jinja2.ext:babel_extract"),
    ("templates/**.xml", "jinja2.ext:babel_extract"),
]
# Fixed header dates keep the generated files byte-for-byte reproducible (git shows real changes only).
FIXED_DATE = datetime(2025, 1, 1, tzinfo=UTC)
OPTIONS_MAP = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def extract() -> Catalog:
    template = Catalog(project="Herold", charset="utf-8", fuzzy=False, creation_date=FIXED_DATE)
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), METHOD_MAP, OPTIONS_MAP, keywords=DEFAULT_KEYWORDS, strip_comment_tags=True
    ):
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def merged(locale: str, template: Catalog) -> Catalog:
    path = po_path(locale)
    if path.exists():
        with path.open("rb") as file:
            catalog = read_po(file, locale=locale, domain=DOMAIN)
    else:
        catalog = Catalog(locale=locale, domain=DOMAIN, project="Herold", fuzzy=False)
    # No fuzzy matching: a guessed translation is worse than an English string.
    catalog.update(template, no_fuzzy_matching=True)
    catalog.obsolete.clear()
    catalog.creation_date = FIXED_DATE
    catalog.revision_date = FIXED_DATE
    catalog.last_translator = "Herold developers"
    catalog.language_team = "Herold developers"
    return catalog


def po_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, sort_output=True, include_lineno=False, omit_header=False)
    return buffer.getvalue()


def mo_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def problems(locale: str, catalog: Catalog) -> list[str]:
    found = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            found.append(f"{locale}: no translation for {message.id!r}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.i18n", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="change nothing; fail if anything is out of date"
    )
    args = parser.parse_args(argv)
    template = extract()
    failures: list[str] = []
    for locale in SUPPORTED_LOCALES:
        if locale == DEFAULT_LOCALE:
            continue
        catalog = merged(locale, template)
        po, mo = po_bytes(catalog), mo_bytes(catalog)
        mo_path = po_path(locale).with_suffix(".mo")
        failures.extend(problems(locale, catalog))
        if args.check:
            if not po_path(locale).exists() or po_path(locale).read_bytes() != po:
                failures.append(f"{locale}: {po_path(locale).relative_to(ROOT)} is not up to date")
            if not mo_path.exists() or mo_path.read_bytes() != mo:
                failures.append(f"{locale}: {mo_path.relative_to(ROOT)} is not compiled from the .po file")
            continue
        po_path(locale).parent.mkdir(parents=True, exist_ok=True)
        po_path(locale).write_bytes(po)
        mo_path.write_bytes(mo)
        print(f"{locale}: {len(catalog)} messages, {len(problems(locale, catalog))} untranslated")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
