"""The model server processes of an `mlflow_serve` target and what the bot remembers of them.

Each version runs `mlflow models serve` in its own session (process group), detached from the CLI so that it
outlives it; stopping it signals the whole group (its gunicorn/uvicorn workers too): SIGTERM, a bounded wait,
then SIGKILL. The state of a target lives in `.mlops-bot/serving/<target>/state.json`, written atomically:
the live version, its server's pid and port and the front's port. One deployment of a target at a time
(`target_lock`): a second waits, bounded, then fails with a clear message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import BotError
from ..support.environment import child_environment
from ..support.files import write_atomic
from ..support.state import local_state_dir, state_path

STATE_FILE = "state.json"
SCRAPE_FILE = "prometheus.json"  # file_sd targets: the taps (deploy/tap.py) of the versions being served
SHADOW_FILE = "shadow.json"  # in a version's directory: where its tap mirrors requests (deploy/tap.py)
LOCK_WAIT_S = 120.0
STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class Server:
    """One running `mlflow models serve` (the leader of its own process group)."""

    version: str
    pid: int
    port: int
    host: str = "127.0.0.1"
    directory: str = ""  # its model and log, removed once it is stopped for good

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class ServingState:
    target: str
    live: Server | None
    front_port: int | None = None
    canary: Server | None = None  # the version a rollout brings in, beside `live` (deploy/rollout/)

    def servers(self) -> list[Server]:
        return [s for s in (self.live, self.canary) if s is not None]


def serving_dir(root: Path, target: str) -> Path:
    """`.mlops-bot/serving/<target>/` (git-ignored), created on first use."""
    local_state_dir(state_path(root, "serving"))
    directory = state_path(root, "serving", target)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def read_state(directory: Path, target: str) -> ServingState:
    path = directory / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        live, canary = data.get("live"), data.get("canary")
        return ServingState(target, Server(**live) if live else None, data.get("front_port"),
                            Server(**canary) if canary else None)
    except FileNotFoundError:
        return ServingState(target, None)
    except (ValueError, TypeError, AttributeError) as exc:
        raise BotError(f"{path} is not a state file mlops-bot wrote ({exc}); stop the servers it names by hand "
                       "and remove the file.") from None


def write_state(directory: Path, state: ServingState) -> None:
    """The state, and the scrape targets Prometheus reads from it (its file_sd_configs may name the file)."""
    data = {"target": state.target, "live": asdict(state.live) if state.live else None,
            "front_port": state.front_port, "canary": asdict(state.canary) if state.canary else None}
    write_atomic(directory / STATE_FILE, json.dumps(data, indent=2) + "\n")
    groups = [{"targets": [f"{s.host}:{s.port}"], "labels": {"mlops_bot_target": state.target}}
              for s in state.servers()]
    write_atomic(directory / SCRAPE_FILE, json.dumps(groups, indent=2) + "\n")


@contextlib.contextmanager
def target_lock(directory: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Only one deployment of this target at a time, across processes."""
    with open(directory / "deploy.lock", "a+") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BotError(f"another deployment of {directory.name} held {handle.name} for {wait_s:g}s; "
                                   "wait for it to end and run again.") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie group leader is dead for our purpose)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def mlflow_command() -> str:
    """The `mlflow` of the bot's own environment, so the server loads models with the same libraries."""
    beside = Path(sys.executable).with_name("mlflow")
    found = str(beside) if beside.exists() else shutil.which("mlflow")
    if not found:
        raise BotError("the `mlflow` command is not installed next to mlops-bot; pip install mlflow.")
    return found


def server_environment(mlflow: str) -> dict[str, str]:
    """What the model server sees: no secret of the job (support/environment), and the bot's environment first
    on PATH, where mlflow finds uvicorn/gunicorn."""
    env = child_environment(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(mlflow).parent), env.get("PATH", os.defpath)])
    return env


def start_server(model_dir: Path, version: str, workers: int, log_file: Path, target: str,
                 shadow_file: Path) -> Server:
    """Starts the version's tap (deploy/tap.py) on a free port in its own session; the tap starts `mlflow models
    serve` as its child in that session and forwards to it, counting requests and predictions for Prometheus.
    `shadow_file` is where the bot tells the tap to mirror requests (SHADOW_FILE in the version's directory).
    Returns at once (see wait_healthy). The server's environment is the bot's: it loads the model with the same
    libraries (--env-manager local)."""
    host, port = "127.0.0.1", free_port()
    mlflow = mlflow_command()
    argv = [sys.executable, "-m", "mlops_bot.deploy.tap", "--port", str(port), "--host", host, "--target", target,
            "--version", version, "--model-dir", str(model_dir), "--workers", str(workers), "--log-file",
            str(log_file), "--shadow-file", str(shadow_file)]
    with open(log_file, "ab") as log:
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       cwd=model_dir.parent, env=server_environment(mlflow),
                                       start_new_session=True)
        except OSError as exc:
            raise BotError(f"cannot start the model server of v{version} ({exc.strerror}); check the mlflow "
                           "install.") from None
    return Server(version, process.pid, port, host)


def wait_healthy(server: Server, timeout_s: float, log_file: Path) -> float:
    """Polls GET /health until it answers 200; returns the seconds it took. Fails when the server exits or
    the time is up (then it is stopped)."""
    started = time.monotonic()
    while True:
        with contextlib.suppress(OSError, urllib.error.URLError), \
                urllib.request.urlopen(server.url + "/health", timeout=2) as answer:
            if answer.status == 200:
                return time.monotonic() - started
        if not alive(server.pid):
            _reap(server.pid)
            raise BotError(f"the model server of v{server.version} exited before it answered /health; last "
                           f"output: {tail(log_file)} (all of it in {log_file})")
        if time.monotonic() - started > timeout_s:
            stop_server(server)
            raise BotError(f"the model server of v{server.version} did not answer {server.url}/health within "
                           f"{timeout_s:g}s and was stopped; raise the target's timeout or see {log_file}.")
        time.sleep(0.3)


def stop_server(server: Server, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to the server's process group, a bounded wait, then SIGKILL; a pid the system gave to another
    program since (the state outlived the server, e.g. a reboot) is left alone."""
    if alive(server.pid) and not is_model_server(server.pid):
        return
    stop_group(server.pid, grace_s)


def is_model_server(pid: int) -> bool:
    """The process is a version's tap or runs mlflow; True when the system cannot tell."""
    try:
        line = Path(f"/proc/{pid}/cmdline").read_bytes()
        return b"mlflow" in line or b"mlops_bot.deploy.tap" in line
    except OSError:
        return True


def stop_group(pid: int, grace_s: float = STOP_GRACE_S) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        _reap(pid)
        return
    except PermissionError as exc:
        raise BotError(f"cannot stop process group {pid} ({os.strerror(errno.EPERM)}); stop it by hand.") from exc
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not _group_exists(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _reap(pid)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return alive(pgid) or _other_members(pgid)


def _other_members(pgid: int) -> bool:
    """Members of the group besides a dead leader (workers still shutting down)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != pgid:
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    return True
    return False


def _reap(pid: int) -> None:
    """Collects the exit status when the server is our own child (the same CLI process started it)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def tail(log_file: Path, lines: int = 5) -> str:
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no output)"
    return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip()) or "(no output)"
