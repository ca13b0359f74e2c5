"""Running the real `herold` command in subprocesses, for tests that need real processes and sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HEROLD = str(Path(sys.executable).with_name("herold"))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def herold_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HEROLD_", "TEST_"))}
    env.update(
        {
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-of-a-herold-process",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def run_herold(
    args: list[str], env: dict[str, str], *, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HEROLD, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


class ServerProcess:
    """`herold serve` (or `herold worker`) in the background, stopped on exit."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = log_path.open("w")
        self.process = subprocess.Popen([HEROLD, *args], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_http(self, url: str, deadline: float = 120.0) -> None:
        # Generous: a loaded 2-core CI machine can take half a minute to import and migrate.
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                httpx.get(url, timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError(f"{url} did not answer:\n{self.output()}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
