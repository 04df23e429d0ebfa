"""Start and stop a real `mlflow server` (sqlite backend, proxied artifacts, 1 worker) on 127.0.0.1.

Used once per test session by tests/conftest.py; also runnable by hand:
`python -m tests.servers.mlflow_server DIR` prints the URI and serves until interrupted.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# A fixed Fernet key (32 url-safe base64 bytes) so webhook secrets survive a restart within a session.
WEBHOOK_KEY = "bWxvcHMtYm90LXRlc3Qta2V5LTAwMDAwMDAwMDAwMDA="
STARTUP_TIMEOUT = 120.0


class ServerProcess:
    """A server subprocess in a process group of its own, with its log file: stopped as a group."""

    process: subprocess.Popen[bytes]
    log_path: Path
    stopped: bool

    def stop(self) -> None:
        """SIGTERM to the server's process group, then SIGKILL to whatever is left of the group."""
        if self.stopped:
            return  # never signal a process group id that may have been reused since
        self.stopped = True
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        # uvicorn and helper processes can outlive the main one; the group is ours alone (new session).
        _signal_group(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class MlflowServer(ServerProcess):
    uri: str
    port: int
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    stopped: bool = False


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mlflow_executable() -> str:
    candidate = Path(sys.executable).with_name("mlflow")
    return str(candidate) if candidate.exists() else "mlflow"


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    env.update(
        MLFLOW_WEBHOOK_ALLOWED_SCHEMES="http,https",
        MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS="true",
        MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY=WEBHOOK_KEY,
        # The server caches each event's webhook list for 60 s by default: a webhook a test creates after other
        # tests set aliases would stay unseen that long.
        MLFLOW_WEBHOOK_CACHE_TTL="1",
        # The job runner (7 huey consumer processes) serves GenAI jobs the bot never uses; webhooks are
        # delivered by the server itself. Off, it saves CPU on a 2-core runner and stops cleanly.
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        MLFLOW_SERVER_JOB_ENABLE_PERIODIC_TASKS="false",
        PYTHONUNBUFFERED="1",
    )
    return env


def start(root: Path, artifacts: Sequence[str] | None = None) -> MlflowServer:
    """`artifacts`: the server's artifact options instead of proxied artifacts under `root/artifacts`,
    e.g. `["--no-serve-artifacts", "--default-artifact-root", "file:///elsewhere"]`."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = root / "server.log"
    cmd = [
        mlflow_executable(), "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        *(["--artifacts-destination", str(root / "artifacts"), "--serve-artifacts"] if artifacts is None
          else artifacts),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root,
                                   env=server_env(), start_new_session=True)
    server = MlflowServer(f"http://127.0.0.1:{port}", port, root, process, log_path)
    atexit.register(server.stop)  # also when the session ends abnormally
    try:
        wait_healthy(server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_healthy(server: MlflowServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.uri + "/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"mlflow server not healthy after {STARTUP_TIMEOUT:.0f} s:\n{server.log_tail()}")


if __name__ == "__main__":
    started = start(Path(sys.argv[1]).resolve())
    print(started.uri, flush=True)
    try:
        started.process.wait()
    except KeyboardInterrupt:
        started.stop()
