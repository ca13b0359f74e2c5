"""RSA signatures for deliveries, made in a process of its own.

Why a process: an RSA-2048 signature costs ~0.4 ms, and a fan-out makes one per inbox. In a
thread beside the event loop it cost 15-30 % more than alone (bench/bench_fanout.py): the thread
needs the GIL back after every signature, and it shares the loop's caches. In a child process it
costs what it costs alone, and the event loop's turns stay short whatever the fan-out.

The parent (`SigningProcess`, one per `AppContext`) takes signing strings (see
`prepare_signature` in app/activitypub/signatures.py), one at a time or a fan-out batch at once
(`sign_many`), and hands them over in batches: whatever queued up while the child was busy goes
in one write. The child only signs. It is started with the worker (or at the first signature),
restarted if it dies, and ends when its stdin closes, so it never outlives its parent, even one
killed with SIGKILL.

The pipe's framing, all integers big-endian:
- request: pem length (u32), count (u32), the PEM, then per string its length (u32) and bytes;
- answer: count (i32) and total length (u32), then per signature its length (u16) and bytes;
  a count of -1 is an error, the total being its message's length.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import struct
import sys
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.activitypub.keys import load_own_private_key

log = logging.getLogger(__name__)

# The child's niceness above its parent's (nice(2)). Its work is the deliveries' signatures, the
# largest CPU cost of a fan-out (0.7 ms each), and deliveries can wait a moment: when the cores
# are wanted by both, requests (inbox deliveries from other servers, people's reads) and the
# worker's processing go first. It holds no lock anyone waits for, so yielding delays nobody else.
SIGNING_NICENESS = 10

_REQUEST_HEAD = struct.Struct("!II")
_ANSWER_HEAD = struct.Struct("!iI")
_LENGTH = struct.Struct("!I")
_SIGNATURE_LENGTH = struct.Struct("!H")
# Keys the child keeps loaded: the accounts that post.
CHILD_KEYS = 64
# Signing strings per hand-over at most, so an answer never waits behind a huge batch.
BATCH_LIMIT = 512
# How long a batch may take before the process is taken for hung: a start-up allowance, plus a
# generous 20 ms per signature (one costs ~0.4 ms).
EXCHANGE_TIMEOUT = 10.0
SIGNATURE_TIMEOUT = 0.02


class SigningError(Exception):
    """The signing process could not sign: it died, hung or broke its pipe (twice in a row)."""


class SigningKeyError(SigningError):
    """The key cannot sign (not a private RSA key, a broken PEM): no later try will either."""


# --------------------------------------------------------------------------------------------
# The child


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Sign what arrives on `requests` until it closes (the child's main loop)."""
    keys: dict[bytes, rsa.RSAPrivateKey] = {}
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    while True:
        head = requests.read(_REQUEST_HEAD.size)
        if len(head) < _REQUEST_HEAD.size:
            return
        pem_length, count = _REQUEST_HEAD.unpack(head)
        pem = requests.read(pem_length)
        strings = [requests.read(_LENGTH.unpack(requests.read(_LENGTH.size))[0]) for _ in range(count)]
        try:
            key = keys.pop(pem, None)
            if key is not None:
                keys[pem] = key  # the most recently used last: the oldest goes first
            else:
                key = keys[pem] = load_own_private_key(pem)
                while len(keys) > CHILD_KEYS:
                    del keys[next(iter(keys))]
            signatures = [key.sign(string, pkcs1, sha256) for string in strings]
        except Exception as error:
            message = f"{type(error).__name__}: {error}".encode()
            answers.write(_ANSWER_HEAD.pack(-1, len(message)) + message)
        else:
            body = b"".join(_SIGNATURE_LENGTH.pack(len(signature)) + signature for signature in signatures)
            answers.write(_ANSWER_HEAD.pack(count, len(body)) + body)
        answers.flush()


# --------------------------------------------------------------------------------------------
# The parent


@dataclass(slots=True)
class _Request:
    """Strings to sign with one key, for one caller."""

    pem: bytes
    strings: list[bytes]
    future: asyncio.Future[list[bytes]]


class SigningProcess:
    """The parent's side: signing strings to the child in batches, signatures back in order."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Task[asyncio.subprocess.Process] | None = None
        self._queue: list[_Request] = []
        self._pump: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (the benchmark counts its CPU)."""
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the child now rather than at the first signature (the worker does, at start-up)."""
        await self._running()

    async def sign(self, pem: bytes, signing_string: bytes) -> bytes:
        """The RSA-SHA256 (PKCS#1 v1.5) signature of `signing_string` with the key in `pem`."""
        [signature] = await self.sign_many(pem, [signing_string])
        return signature

    async def sign_many(self, pem: bytes, signing_strings: list[bytes]) -> list[bytes]:
        """The signatures of `signing_strings`, in order, with the key in `pem`.

        One call for a whole fan-out batch: one wait, where a call per string costs a future and
        a wake-up each."""
        if self._closed:
            raise SigningError("the signing process is closed")
        if not signing_strings:
            return []
        loop = asyncio.get_running_loop()
        requests = [
            _Request(pem, signing_strings[start : start + BATCH_LIMIT], loop.create_future())
            for start in range(0, len(signing_strings), BATCH_LIMIT)
        ]
        self._queue.extend(requests)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run())
        if len(requests) == 1:
            return await requests[0].future
        signatures: list[bytes] = []
        try:
            for request in requests:
                signatures.extend(await request.future)
        finally:
            # Should one part have failed (or the caller gone), the rest are no longer wanted, and
            # their failures are this one.
            for request in requests:
                if not request.future.done():
                    request.future.cancel()
                elif not request.future.cancelled():
                    request.future.exception()
        return signatures

    async def aclose(self) -> None:
        self._closed = True
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await self._starting
        process, self._process = self._process, None
        if process is not None:
            await _stop(process)
        self._fail(self._queue, SigningError("the signing process is closed"))
        self._queue.clear()

    async def _running(self) -> asyncio.subprocess.Process:
        if self._process is not None:
            if self._process.returncode is None:
                return self._process
            await _discard(self._process)  # it died while idle
            self._process = None
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._spawn())
        return await asyncio.shield(self._starting)

    async def _spawn(self) -> asyncio.subprocess.Process:
        # Kept as soon as it exists, so that `aclose` ends it even if its caller was cancelled.
        self._process = await _spawn()
        return self._process

    async def _run(self) -> None:
        while self._queue:
            batch = self._next_batch()
            if not batch:
                continue
            strings = [string for request in batch for string in request.strings]
            try:
                signatures = await self._exchange_retried(batch[0].pem, strings)
            except asyncio.CancelledError:
                self._fail(batch, SigningError("the signing process is closed"))
                raise
            except SigningError as error:
                self._fail(batch, error)
                continue
            position = 0
            for request in batch:
                count = len(request.strings)
                if not request.future.done():
                    request.future.set_result(signatures[position : position + count])
                position += count

    def _next_batch(self) -> list[_Request]:
        """The oldest request's key's requests, up to BATCH_LIMIT strings; callers gone are dropped."""
        pem = self._queue[0].pem
        batch: list[_Request] = []
        rest: list[_Request] = []
        room = BATCH_LIMIT
        for request in self._queue:
            if request.future.done():
                continue
            # Each request holds at most BATCH_LIMIT strings, so the first always fits.
            if request.pem == pem and len(request.strings) <= room:
                batch.append(request)
                room -= len(request.strings)
            else:
                rest.append(request)
        self._queue = rest
        return batch

    async def _exchange_retried(self, pem: bytes, strings: list[bytes]) -> list[bytes]:
        """One batch signed; when the process fails on it, once more on a new process.

        Signing changes nothing, so a second try is safe; two failures in a row are the caller's
        to handle (the delivery is postponed, not counted against the job)."""
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(EXCHANGE_TIMEOUT + SIGNATURE_TIMEOUT * len(strings)):
                    return await self._exchange(pem, strings)
            except SigningKeyError:
                raise
            except Exception as error:  # died, hung, a broken pipe or answer: a new process
                log.warning(
                    "the signing process failed (%s: %s); starting a new one", type(error).__name__, error
                )
                broken, self._process = self._process, None
                if broken is not None:
                    await _discard(broken)
                if attempt == 2:
                    raise SigningError(
                        f"the signing process failed twice: {type(error).__name__}: {error}"
                    ) from None
        raise AssertionError("unreachable")

    @staticmethod
    def _fail(requests: list[_Request], error: SigningError) -> None:
        for request in requests:
            if not request.future.done():
                request.future.set_exception(error)

    async def _exchange(self, pem: bytes, strings: list[bytes]) -> list[bytes]:
        process = await self._running()
        assert process.stdin is not None and process.stdout is not None
        parts = [_REQUEST_HEAD.pack(len(pem), len(strings)), pem]
        for string in strings:
            parts.append(_LENGTH.pack(len(string)))
            parts.append(string)
        process.stdin.write(b"".join(parts))
        await process.stdin.drain()
        count, length = _ANSWER_HEAD.unpack(await process.stdout.readexactly(_ANSWER_HEAD.size))
        body = await process.stdout.readexactly(length)
        if count < 0:
            # The child answers with an error only when the key cannot be loaded or sign.
            raise SigningKeyError(f"the key cannot sign: {body.decode(errors='replace')}")
        signatures: list[bytes] = []
        position = 0
        for _ in range(count):
            (size,) = _SIGNATURE_LENGTH.unpack_from(body, position)
            position += _SIGNATURE_LENGTH.size
            signatures.append(body[position : position + size])
            position += size
        if count != len(strings) or position != length:
            raise ValueError(f"{count} signatures in {length} bytes for {len(strings)} strings")
        return signatures


async def _spawn() -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Close the child's stdin: it ends by itself once it has answered what it had. Its answers
    are read to the end, so that it is not left blocked writing them; killed if it lingers."""
    if process.stdin is not None:
        process.stdin.close()
    try:
        async with asyncio.timeout(2.0):
            if process.stdout is not None:
                await process.stdout.read()
            await process.wait()
    except TimeoutError:
        await _discard(process)


async def _discard(process: asyncio.subprocess.Process) -> None:
    """Kill a child that failed (hung, or already dead) and close its pipes."""
    if process.stdin is not None:
        process.stdin.close()
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    if process.stdout is not None:
        await process.stdout.read()  # to the end: a pipe paused while full would stay open
    await process.wait()


if __name__ == "__main__":
    # Ctrl-C or SIGTERM to the process group is for the parent, which may still be signing while
    # it shuts down; the child ends when the parent closes its stdin (or dies).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.nice(SIGNING_NICENESS)
    serve(sys.stdin.buffer, sys.stdout.buffer)
