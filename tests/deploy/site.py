"""The shipped deploy/ files, templated only where an operator edits them: names, ports, paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NGINX_SITE = DEPLOY / "nginx" / "herold.conf"
SYSTEMD = DEPLOY / "systemd"
PRODUCTION_ENV = DEPLOY / "herold.env"

LOCAL_DOMAIN = "org.example"
WEB_DOMAIN = "social.org.example"


@dataclass
class SiteValues:
    local_domain: str
    web_domain: str
    # What replaces "443" in `listen 443 ssl http2`, for the LOCAL_DOMAIN and the WEB_DOMAIN
    # server block. Each its own address: TLS clients send no SNI for an IP address, so nginx picks
    # the server (and certificate) by the address alone.
    https_listen_local: str
    https_listen_web: str
    http_listen: str  # what replaces "80" in `listen 80`
    upstreams: list[int]  # the web processes' ports
    local_certificate: tuple[Path, Path]
    web_certificate: tuple[Path, Path]


def templated_site(values: SiteValues) -> str:
    site = NGINX_SITE.read_text()
    site = site.replace("    listen [::]:443 ssl http2;\n", "").replace("    listen [::]:80;\n", "")
    blocks = site.split("\nserver {")
    for index, block in enumerate(blocks):
        if f"server_name {LOCAL_DOMAIN};" in block:
            listen = values.https_listen_local
        elif f"server_name {WEB_DOMAIN};" in block:
            listen = values.https_listen_web
        else:
            continue
        blocks[index] = block.replace("listen 443 ssl http2;", f"listen {listen} ssl http2;")
    site = "\nserver {".join(blocks)
    assert "listen 443" not in site
    site = site.replace("listen 80;", f"listen {values.http_listen};")
    for name, (certificate, key) in (
        (WEB_DOMAIN, values.web_certificate),
        (LOCAL_DOMAIN, values.local_certificate),
    ):
        site = site.replace(f"/etc/letsencrypt/live/{name}/fullchain.pem", str(certificate))
        site = site.replace(f"/etc/letsencrypt/live/{name}/privkey.pem", str(key))
    upstream_lines = "".join(
        f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;\n" for port in values.upstreams
    )
    site = site.replace(
        "    server 127.0.0.1:8000 max_fails=1 fail_timeout=5s;\n"
        "    server 127.0.0.1:8001 max_fails=1 fail_timeout=5s;\n",
        upstream_lines,
    )
    # Server names last: the web domain contains the local one. A domain may carry a port (the
    # test's nginx listens on a free one): redirects keep it, server_name matches the host alone.
    lines = []
    for line in site.splitlines(keepends=True):
        server_name = line.strip().startswith("server_name")
        line = line.replace(WEB_DOMAIN, "\0web\0").replace(
            LOCAL_DOMAIN, _host(values.local_domain) if server_name else values.local_domain
        )
        lines.append(line.replace("\0web\0", _host(values.web_domain) if server_name else values.web_domain))
    return "".join(lines)


def _host(domain: str) -> str:
    return domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain


def nginx_main_config(directory: Path, site: str) -> Path:
    """A main nginx.conf that runs unprivileged in `directory` and includes the site."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "site.conf").write_text(site)
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi", "www"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    config = directory / "nginx.conf"
    config.write_text(
        f"""
daemon off;
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} info;
events {{ worker_connections 1024; }}
http {{
    access_log {directory / "access.log"};
    client_body_temp_path {directory / "client_body"};
    proxy_temp_path {directory / "proxy"};
    fastcgi_temp_path {directory / "fastcgi"};
    uwsgi_temp_path {directory / "uwsgi"};
    scgi_temp_path {directory / "scgi"};
    include {directory / "site.conf"};
}}
"""
    )
    return config
