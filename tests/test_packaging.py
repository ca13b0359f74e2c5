"""How Herold is packaged: installs without setuptools' deprecation warnings."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_license_is_an_spdx_expression_with_a_setuptools_that_reads_it() -> None:
    """The `{ text = … }` table makes setuptools warn on every install; the SPDX string needs 77+."""
    project = tomllib.loads(PYPROJECT.read_text())
    assert project["project"]["license"] == "AGPL-3.0-or-later"
    (requirement,) = [item for item in project["build-system"]["requires"] if item.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", requirement)
    assert minimum and int(minimum.group(1)) >= 77, requirement
