"""Deliveries over HTTPS, as real inboxes are: the lean delivery client against a TLS server on
loopback with a certificate made for the test, trusted by the client's context only."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.activitypub.addresses import AddressPolicy
from app.activitypub.delivery_connections import DeliveryConnections

LOOPBACK = AddressPolicy(allowed=(ipaddress.ip_network("127.0.0.0/8"),))


def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` (a DNS name and 127.0.0.1), written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsInbox:
    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def tls_inbox(tmp_path: Path) -> AsyncIterator[tuple[TlsInbox, int, Path]]:
    cert, key = _certificate(tmp_path, "inbox.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    inbox = TlsInbox()
    server = await asyncio.start_server(inbox.handle, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield inbox, port, cert
    finally:
        server.close()
        await server.wait_closed()


def _client_trusting(cert: Path) -> DeliveryConnections:
    context = ssl.create_default_context()
    context.load_verify_locations(cert)
    return DeliveryConnections(LOOPBACK, ssl_context=context, connect_timeout=5.0)


async def test_posts_over_tls_and_keeps_the_connection(tls_inbox: tuple[TlsInbox, int, Path]) -> None:
    inbox, port, cert = tls_inbox
    pool = _client_trusting(cert)
    try:
        headers = {"Host": f"127.0.0.1:{port}", "Content-Type": "application/activity+json"}
        for body in (b'{"n":1}', b'{"n":2}'):
            answer = await pool.post(
                f"https://127.0.0.1:{port}/inbox", body, headers, read_timeout=5.0, read_limit=1024
            )
            assert answer.status == 202
    finally:
        await pool.aclose()
    assert inbox.connections == 1
    assert [request.split(b"\r\n\r\n", 1)[1] for request in inbox.requests] == [b'{"n":1}', b'{"n":2}']
    assert inbox.requests[0].startswith(b"POST /inbox HTTP/1.1\r\n")


async def test_an_untrusted_certificate_is_a_connect_error(
    tls_inbox: tuple[TlsInbox, int, Path], tmp_path: Path
) -> None:
    _inbox, port, _cert = tls_inbox
    other, _ = _certificate(tmp_path, "someone-else.test")
    pool = _client_trusting(other)
    try:
        with pytest.raises(httpx.ConnectError, match="certificate"):
            await pool.post(f"https://127.0.0.1:{port}/inbox", b"{}", {}, read_timeout=5.0, read_limit=1024)
    finally:
        await pool.aclose()
