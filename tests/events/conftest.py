"""Real parts for the event tests: projects on the embedded registry (or the mlflow server) with `on:` rules
and versions to deploy, signed webhook requests as MLflow, GitHub and GitLab send them, and `mlops-bot serve`
started as a subprocess on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_bot.config.model import Config
from mlops_bot.registry.base import Registry
from tests.flows.conftest import make_run
from tests.flows.conftest import write_project as flows_project
from tests.servers.mlflow_server import free_port

SECRET = "mlflow-whsec-0123456789abcdef"
GITHUB_SECRET = "github-whsec-fedcba9876543210"
GITLAB_TOKEN = "gitlab-token-5a5a5a5a5a5a5a5a"
SECRETS_ENV = {"MLOPS_BOT_MLFLOW_WEBHOOK_SECRET": SECRET, "MLOPS_BOT_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
               "MLOPS_BOT_GITLAB_WEBHOOK_TOKEN": GITLAB_TOKEN}
ROOT = Path(__file__).resolve().parents[2]

CHAMPION_DEPLOYS = "  - {event: model_version.alias_set, where: {alias: champion}, do: [deploy]}"


def write_project(root: Path, model: str = "demo", uri: str = "local", rules: str = CHAMPION_DEPLOYS) -> Config:
    """The promotion tests' project, with a deploy target that records versions and the given `on:` rules."""
    return flows_project(root, model, uri, rules=rules)


def add_version(registry: Registry, config: Config, workdir: Path, accuracy: float = 0.9) -> str:
    """A finished run with a model artifact, registered as a new version of config's model."""
    run_id = make_run(registry, config, accuracy, workdir)
    registry.get_or_create_registered_model(config.model.name)
    artifact_uri = registry.get_run(run_id).artifact_uri
    return registry.create_model_version(config.model.name, f"{artifact_uri}/model", run_id).version


def deployed(root: Path) -> list[str]:
    path = root / "deployed.txt"
    return path.read_text().split() if path.exists() else []


def audit_lines(root: Path) -> list[dict[str, Any]]:
    path = root / ".mlops-bot" / "events" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def mlflow_request(data: Mapping[str, Any], entity: str = "model_version_alias", action: str = "created",
                   secret: str = SECRET, delivery: str | None = None, stamp: int | None = None,
                   body: bytes | None = None) -> tuple[bytes, dict[str, str]]:
    """A delivery as MLflow 3 signs it: v1,base64(HMAC-SHA256(secret, "{delivery}.{timestamp}.{body}"))."""
    if body is None:
        body = json.dumps({"entity": entity, "action": action, "timestamp": "2025-01-01T00:00:00+00:00",
                           "data": dict(data)}).encode()
    delivery = delivery or str(uuid.uuid4())
    ts = str(int(time.time()) if stamp is None else stamp)
    digest = hmac.new(secret.encode(), f"{delivery}.{ts}.".encode() + body, hashlib.sha256).digest()
    return body, {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": ts,
                  "X-MLflow-Signature": "v1," + base64.b64encode(digest).decode()}


def github_request(event: str, payload: Mapping[str, Any], secret: str = GITHUB_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(dict(payload)).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-GitHub-Event": event,
                  "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": signature}


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


@pytest.fixture
def serve(request: pytest.FixtureRequest) -> Iterator[Callable[..., Served]]:
    """`serve(root, env=..., workers=...)`: starts `mlops-bot serve`; stopped (or killed) at teardown."""
    started: list[Served] = []

    def make(root: Path, **options: Any) -> Served:
        served = start_serve(root, **options)
        started.append(served)
        return served

    yield make
    for served in started:
        if served.process.poll() is None:
            served.kill()
        served.client.close()


@pytest.fixture(autouse=True)
def strict_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A broken emit fails the test; what CI mode held back in one test is not handled in the next."""
    from mlops_bot.events import bus as events

    monkeypatch.setenv("MLOPS_BOT_EVENTS_STRICT", "1")
    yield
    events.forget_defaults()


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records every POST (headers, body) and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.status = status
        self.seen: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()
