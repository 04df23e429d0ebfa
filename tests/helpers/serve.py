"""`mlops-bot serve` started as a subprocess (its own process group) on 127.0.0.1, with the webhook secrets of
`webhooks` in its environment; and raw connections that hold it the way a slow client does."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.webhooks import SECRETS_ENV
from tests.servers.mlflow_server import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    """`mlops-bot serve` running as a subprocess (its own process group) on 127.0.0.1."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        return self.client.post(self.url + path, content=body, headers=dict(headers))

    def health(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.get(self.url + "/healthz").json()
        return answer

    def wait_idle(self, timeout: float = 30.0) -> dict[str, Any]:
        """Waits until nothing is pending in the spool; returns the last health document."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            if health["spool"]["pending"] == 0 or time.monotonic() > deadline:
                return health
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.client.close()
        return self.process.returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def start_serve(root: Path, env: Mapping[str, str] | None = None, workers: int = 2, port: int | None = None,
                extra: tuple[str, ...] = ()) -> Served:
    port = port or free_port()
    log_path = root / f"serve-{port}-{time.monotonic_ns()}.log"
    full_env = {**os.environ, **SECRETS_ENV, **(env or {}), "PYTHONPATH": str(ROOT)}
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "mlops_bot", "-C", str(root), "serve", "--port", str(port),
                                    "--workers", str(workers), *extra], stdout=log, stderr=subprocess.STDOUT,
                                   env=full_env, start_new_session=True)
    served = Served(root, port, process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}:\n{served.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if served.client.get(served.url + "/healthz").status_code == 200:
                return served
        time.sleep(0.1)
    served.kill()
    raise RuntimeError(f"serve did not answer /healthz within 30 s:\n{served.log()}")


PARTIAL_HEADERS = b"POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nX-GitHub-Event: push\r\nX-Slow: "
ONE_BODY_BYTE = (b"POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"X-GitHub-Event: push\r\nContent-Length: 4096\r\n\r\n{")


def slow_client(port: int, source: str, sent: bytes = PARTIAL_HEADERS) -> socket.socket:
    """A connection from `source` (any 127/8 address is this machine's) that sends `sent` and then holds."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    if sent:
        sock.sendall(sent)
    return sock


def wait_closed(socks: list[socket.socket], timeout: float) -> tuple[list[socket.socket], dict[socket.socket, bytes]]:
    """Waits until the server closed each socket; returns those still open, and what each closed one was sent."""
    answers: dict[socket.socket, bytes] = {}
    open_ = set(socks)
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        while open_ and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(deadline - time.monotonic(), 0)):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                try:
                    chunk = ready.recv(65536)
                except (ConnectionResetError, TimeoutError):
                    chunk = b""
                answers[ready] = answers.get(ready, b"") + chunk
                if not chunk:
                    open_.discard(ready)
                    selector.unregister(ready)
    return [s for s in socks if s in open_], answers
