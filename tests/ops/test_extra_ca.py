"""EXTRA_CA_CERTIFICATES: outgoing HTTPS trusts a private CA besides the default roots."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from app.config import ConfigurationError, Settings, load_settings
from app.context import build_context
from tests.certificates import TestAuthority


@pytest.fixture
async def private_https(tmp_path: Path) -> AsyncIterator[tuple[str, TestAuthority]]:
    """An HTTPS server on 127.0.0.1 whose certificate only the test CA vouches for."""
    authority = TestAuthority(tmp_path / "pki")
    issued = authority.issue("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.certificate, issued.key)

    async def hello(_request: web.Request) -> web.Response:
        return web.json_response({"hello": "private PKI"})

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"https://127.0.0.1:{port}/", authority
    finally:
        await runner.cleanup()


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        secret_key="a-test-secret-key-long-enough-for-the-rule-0123456789",
        allowed_private_addresses=[ip_network("127.0.0.0/8")],
        **values,
    )


async def test_the_client_trusts_the_extra_ca(
    tmp_path: Path, private_https: tuple[str, TestAuthority]
) -> None:
    url, authority = private_https
    trusting = build_context(_settings(tmp_path, extra_ca_certificates=authority.ca_file))
    default = build_context(_settings(tmp_path))
    try:
        answer = await trusting.http.get(url)
        assert answer.status_code == 200
        assert answer.json() == {"hello": "private PKI"}
        with pytest.raises(httpx.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await default.http.get(url)
    finally:
        await trusting.aclose()
        await default.aclose()


def test_an_unusable_bundle_stops_start_up_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "a-test-secret-key-long-enough-for-the-rule-0123456789")
    monkeypatch.setenv("EXTRA_CA_CERTIFICATES", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match=r"EXTRA_CA_CERTIFICATES: .*missing.pem: No such file"):
        load_settings(_env_file=None)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    monkeypatch.setenv("EXTRA_CA_CERTIFICATES", str(tmp_path / "junk.pem"))
    with pytest.raises(
        ConfigurationError, match=r"EXTRA_CA_CERTIFICATES: .*junk.pem holds no PEM certificates"
    ):
        load_settings(_env_file=None)
