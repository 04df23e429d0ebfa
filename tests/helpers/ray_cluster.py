"""A real single-node Ray cluster on 127.0.0.1 (`ray start --head` from the .venv's ray), for `backend: ray` tests
and the benchmark.

Its processes are found again by their session: `ray start` runs in a new session and every daemon it forks (GCS,
raylet, dashboard, agents, workers) stays in it, so `stop` ends exactly this cluster's processes, by id. `ray stop`
is never used: it kills every Ray process of the machine by name, other clusters' too. A job's entrypoint is started
by Ray in a session of its own; Ray's watcher kills it when its supervisor dies.

The cluster is the one a user would have, with two settings for this machine: loopback only
(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps Ray from advertising the host's address) and an offline package index
(PIP_NO_INDEX, one runtime env attempt), so a `pip:` that cannot be installed fails in seconds, not minutes.
`python -m tests.helpers.ray_cluster` starts one and prints its address until interrupted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers.mlflow_server import free_port

BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 90.0
STOP_GRACE_S = 5.0


@dataclass
class RayCluster:
    address: str  # the dashboard's Jobs API, what backend.address names
    gcs_port: int
    temp_dir: Path
    session: int  # the session id of every process of the cluster
    log_path: Path
    stopped: bool = field(default=False)

    def processes(self) -> list[int]:
        return session_members(self.session)

    def stop(self) -> None:
        """SIGTERM to every process of the cluster's session, SIGKILL to what is left after a grace."""
        if self.stopped:
            return
        self.stopped = True
        kill_session(self.session)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def crash(self) -> None:
        """The cluster going away at once (a lost head node): SIGKILL to all of it, no cleanup."""
        for pid in session_members(self.session):
            _signal(pid, signal.SIGKILL)


def start(tag: str = "ray") -> RayCluster:
    """A head node with 2 CPUs; returns once its Jobs API answers."""
    temp_dir = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    gcs, dashboard = free_port(), free_port()
    argv = [str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", "--num-cpus=2", "--disable-usage-stats",
            f"--temp-dir={temp_dir}", f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}"]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PIP_NO_INDEX": "1", "PIP_RETRIES": "0",
           "RUNTIME_ENV_RETRY_TIMES": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    for name in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)  # the cluster's processes must not inherit the test's own
    log_path = temp_dir / "start.log"
    with log_path.open("wb") as log:
        starter = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                   cwd=temp_dir)
        cluster = RayCluster(f"http://127.0.0.1:{dashboard}", gcs, temp_dir, starter.pid, log_path)
        try:
            code = starter.wait(timeout=STARTUP_TIMEOUT_S)
            if code != 0:
                raise RuntimeError(f"ray start exited {code}: {log_path.read_text(errors='replace')[-3000:]}")
            _wait_ready(cluster.address)
        except BaseException:
            cluster.stop()
            raise
    return cluster


def _wait_ready(address: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{address}/api/version", timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def session_members(session: int) -> list[int]:
    """The live (not zombie) processes whose session id is `session`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def kill_session(session: int) -> None:
    for pid in session_members(session):
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while session_members(session) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in session_members(session):
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + STOP_GRACE_S
    while session_members(session) and time.monotonic() < deadline:
        time.sleep(0.1)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


if __name__ == "__main__":
    cluster = start()
    print(cluster.address, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
