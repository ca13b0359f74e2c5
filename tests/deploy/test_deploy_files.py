"""The files in deploy/ are checked by the tools that run them: nginx -t, systemd-analyze verify."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.certificates import TestAuthority
from tests.deploy.site import (
    DEPLOY,
    LOCAL_DOMAIN,
    PRODUCTION_ENV,
    SYSTEMD,
    WEB_DOMAIN,
    SiteValues,
    nginx_main_config,
    templated_site,
)
from tests.processes import HEROLD

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
REPOSITORY = DEPLOY.parent
SERVICES = ["herold-migrate.service", "herold-web@.service", "herold-worker.service"]


def test_units_are_hardened_and_ordered_after_migrate() -> None:
    data_dir = next(
        line.split("=", 1)[1]
        for line in PRODUCTION_ENV.read_text().splitlines()
        if line.startswith("DATA_DIR=")
    )
    for name in SERVICES:
        unit = (SYSTEMD / name).read_text()
        for option in (
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
            f"ReadWritePaths={data_dir}",
            "EnvironmentFile=/etc/herold/herold.env",
        ):
            assert option in unit, f"{name} lacks {option}"
        if name != "herold-migrate.service":
            assert "Requires=herold-migrate.service" in unit
            assert "After=network-online.target postgresql.service herold-migrate.service" in unit
    assert "Type=oneshot" in (SYSTEMD / "herold-migrate.service").read_text()
    assert "--port %i" in (SYSTEMD / "herold-web@.service").read_text()


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    # Installed where this checkout is, instead of /opt/herold: verify checks that ExecStart exists.
    for name in [*SERVICES, "herold.target"]:
        text = (SYSTEMD / name).read_text()
        text = text.replace("/opt/herold/.venv/bin/herold", HEROLD).replace("/opt/herold", str(REPOSITORY))
        (tmp_path / name).write_text(text)
    shutil.copy(tmp_path / "herold-web@.service", tmp_path / "herold-web@8000.service")
    units = ["herold-migrate.service", "herold-web@8000.service", "herold-worker.service", "herold.target"]
    result = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", "--man=no", *(f"./{unit}" for unit in units)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Unknown or misspelt options are only warnings: there must be none.
    assert result.stderr.strip() == "", result.stderr


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian: apt-get install nginx)")
def test_nginx_accepts_the_shipped_site(tmp_path: Path) -> None:
    authority = TestAuthority(tmp_path / "pki")
    web = authority.issue(WEB_DOMAIN)
    local = authority.issue(LOCAL_DOMAIN)
    site = templated_site(
        SiteValues(
            local_domain=LOCAL_DOMAIN,
            web_domain=WEB_DOMAIN,
            https_listen_local="127.0.0.1:18443",
            https_listen_web="127.0.0.1:18444",
            http_listen="127.0.0.1:18080",
            upstreams=[8000, 8001],
            local_certificate=(local.certificate, local.key),
            web_certificate=(web.certificate, web.key),
        )
    )
    # Only what an operator edits was replaced.
    assert site.count("proxy_set_header Host $http_host;") == 1
    config = nginx_main_config(tmp_path / "nginx", site)
    assert NGINX is not None
    result = subprocess.run(
        [
            NGINX,
            "-t",
            "-p",
            str(tmp_path / "nginx"),
            "-c",
            str(config),
            "-e",
            str(tmp_path / "nginx" / "error.log"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


def test_the_readme_points_to_the_deploy_files() -> None:
    readme = (REPOSITORY / "README.md").read_text()
    for path in (
        "deploy/nginx/herold.conf",
        "deploy/systemd/herold-web@.service",
        "deploy/systemd/herold-worker.service",
        "deploy/systemd/herold-migrate.service",
        "deploy/herold.env",
        "deploy/grafana-dashboard.json",
    ):
        assert path in readme, path
        assert (REPOSITORY / path).exists(), path
