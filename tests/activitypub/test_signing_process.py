"""The signing process deliveries sign in: real child processes, real keys."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.activitypub import signing_process
from app.activitypub.signatures import parse_signed_request, prepare_signature, sign_request
from app.activitypub.signing_process import SigningError, SigningKeyError, SigningProcess


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    return tuple(rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))  # type: ignore[return-value]


@pytest.fixture
async def signer() -> AsyncIterator[SigningProcess]:
    """A signing process of the test's own, closed after it."""
    process = SigningProcess()
    yield process
    await process.aclose()


async def _started(signer: SigningProcess) -> int:
    """Start `signer`'s child now; its process id."""
    await signer.start()
    assert signer.pid is not None
    return signer.pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


async def test_requests_signed_there_are_what_sign_request_makes_and_verify(
    keys, signer: SigningProcess
) -> None:
    key, other = keys
    body = b'{"type":"Create"}'
    urls = [f"https://host{number}.example/inbox" for number in range(40)]
    unsigned = [
        prepare_signature(method="POST", url=url, body=body, key_id="https://herold.example/actor#main-key")
        for url in urls
    ]
    # Many at once, with two keys interleaved: batches are formed per key, answers keep their order.
    signatures = await asyncio.gather(
        *(
            signer.sign(_pem(key if number % 3 else other), request.signing_string)
            for number, request in enumerate(unsigned)
        )
    )
    for number, (url, request, signature) in enumerate(zip(urls, unsigned, signatures, strict=True)):
        used = key if number % 3 else other
        headers = request.signed(signature)
        date = parsedate_to_datetime(headers["Date"])
        # PKCS#1 v1.5 is deterministic: the same headers as signing here, to the byte.
        assert headers == sign_request(
            method="POST",
            url=url,
            body=body,
            key_id="https://herold.example/actor#main-key",
            private_key=used,
            now=date,
        )
        parsed = parse_signed_request(
            method="POST", path="/inbox", query="", headers=headers, body=body, now=date
        )
        assert parsed.verify(used.public_key())
        assert not parsed.verify((other if used is key else key).public_key())


async def test_a_broken_key_fails_its_batch_and_the_process_signs_on(keys, signer: SigningProcess) -> None:
    with pytest.raises(SigningKeyError, match="the key cannot sign"):
        await signer.sign(b"-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n", b"x")
    signature = await signer.sign(_pem(keys[0]), b"signing string")
    keys[0].public_key().verify(signature, b"signing string", padding.PKCS1v15(), hashes.SHA256())


async def test_a_signing_process_that_dies_is_replaced(keys, signer: SigningProcess) -> None:
    first = await _started(signer)
    os.kill(first, signal.SIGKILL)
    await asyncio.sleep(0.2)
    # The next batch finds the process gone and runs on a new one.
    signature = await signer.sign(_pem(keys[0]), b"two")
    assert signer.pid not in (None, first)
    keys[0].public_key().verify(signature, b"two", padding.PKCS1v15(), hashes.SHA256())


async def test_a_fan_out_batch_is_signed_in_order_beside_single_signatures(
    keys, signer: SigningProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sign_many` splits what is over a hand-over's limit; the parts, and single signatures
    with another key queued in between, each get their own signatures back."""
    monkeypatch.setattr(signing_process, "BATCH_LIMIT", 4)
    key, other = keys
    strings = [b"inbox %d" % number for number in range(11)]
    many, *singles = await asyncio.gather(
        signer.sign_many(_pem(key), strings),
        *(signer.sign(_pem(other), b"single %d" % number) for number in range(3)),
    )
    assert await signer.sign_many(_pem(key), []) == []
    assert len(many) == len(strings)
    for string, signature in zip(strings, many, strict=True):
        key.public_key().verify(signature, string, padding.PKCS1v15(), hashes.SHA256())
    for number, signature in enumerate(singles):
        other.public_key().verify(signature, b"single %d" % number, padding.PKCS1v15(), hashes.SHA256())


async def test_a_batch_whose_process_dies_mid_way_is_signed_again_by_a_new_one(
    keys, signer: SigningProcess
) -> None:
    first = await _started(signer)
    # ~500 signatures: about 0.2 s of work, killed well before the end.
    strings = [b"%d" % number for number in range(500)]
    batch = [asyncio.ensure_future(signer.sign(_pem(keys[0]), string)) for string in strings]
    await asyncio.sleep(0.05)
    os.kill(first, signal.SIGKILL)
    signatures = await asyncio.gather(*batch)
    assert signer.pid not in (None, first)
    for string, signature in zip(strings, signatures, strict=True):
        keys[0].public_key().verify(signature, string, padding.PKCS1v15(), hashes.SHA256())


async def test_a_hung_process_is_replaced_after_its_timeout(
    keys, signer: SigningProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signing_process, "EXCHANGE_TIMEOUT", 0.5)
    hung = await _started(signer)
    os.kill(hung, signal.SIGSTOP)
    started = time.monotonic()
    signature = await signer.sign(_pem(keys[0]), b"in time")
    assert time.monotonic() - started < 5
    assert signer.pid not in (None, hung)
    assert not _alive(hung)
    keys[0].public_key().verify(signature, b"in time", padding.PKCS1v15(), hashes.SHA256())


async def test_when_no_process_can_be_started_signing_fails_with_the_reason(
    keys, signer: SigningProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")  # the machine's edge: no interpreter
    with pytest.raises(SigningError, match="failed twice: FileNotFoundError"):
        await signer.sign(_pem(keys[0]), b"x")


async def test_closing_with_signatures_pending_fails_them_with_a_signing_error(
    keys, signer: SigningProcess
) -> None:
    pending = [asyncio.ensure_future(signer.sign(_pem(keys[0]), b"%d" % number)) for number in range(2000)]
    await asyncio.sleep(0.1)
    await signer.aclose()
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert failed and all(isinstance(outcome, SigningError) for outcome in failed), {type(o) for o in failed}


async def test_closing_ends_the_process_and_refuses_further_work(keys, signer: SigningProcess) -> None:
    pid = await _started(signer)
    assert _alive(pid)
    await signer.aclose()
    assert not _alive(pid)
    with pytest.raises(SigningError, match="closed"):
        await signer.sign(_pem(keys[0]), b"x")


def test_the_process_does_not_outlive_a_parent_killed_with_sigkill() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import asyncio
                from app.activitypub.signing_process import SigningProcess

                async def main():
                    signer = SigningProcess()
                    await signer.start()
                    print(signer.pid, flush=True)
                    await asyncio.sleep(60)

                asyncio.run(main())
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the signing process outlived its parent"
    finally:
        parent.kill()
        parent.wait()


async def test_the_signing_process_yields_the_cores_to_its_parent(
    signer: SigningProcess, keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]
) -> None:
    # A fan-out's signatures wait when requests want the CPU: the child runs at a lower priority
    # than the worker that started it, and still signs.
    pid = await _started(signer)
    [signature] = await signer.sign_many(_pem(keys[0]), [b"date: now"])
    keys[0].public_key().verify(signature, b"date: now", padding.PKCS1v15(), hashes.SHA256())
    parent = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, parent + signing_process.SIGNING_NICENESS)
