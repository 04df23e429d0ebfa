"""Real parts for the deploy tests: a bare git repository on disk with a seeded KServe manifest, an HTTP
receiver on 127.0.0.1 that checks signatures, and an embedded registry holding three model versions."""

from __future__ import annotations

import collections
import hashlib
import hmac
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlops_bot.config.model import Compare, Config, DeployTarget, Model, Promote, Report, Tracking
from mlops_bot.registry import tags
from mlops_bot.registry.base import Registry
from mlops_bot.registry.local.store import LocalRegistry

MODEL = "iris-classifier"
SECRET = "s3cr3t-signing-key-0123456789"
SUMMARY = "The challenger passes all 2 criteria against champion v2."
MANIFEST = """\
# KServe InferenceService for the iris model; mlops-bot edits storageUri.
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris      # the service name
  annotations:
    serving.kserve.io/deploymentMode: "Serverless"
spec:
  predictor:
      # odd indentation on purpose: four spaces here
      minReplicas:   1
      model:
          modelFormat: {name: sklearn}
          storageUri: 'models:/iris-classifier/1'    # replaced on deploy
          args:
          -   "--workers=2"
"""


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=tester", "-c", "user.email=tester@example.invalid", *args],
                          cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system git configuration (no identity: the bot's own is used)."""
    config = tmp_path / "gitconfig"
    config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class Remote:
    bare: Path
    seed: Path

    def show(self, ref: str, path: str = "deploy/inference.yaml") -> str:
        return git(self.bare, "show", f"{ref}:{path}") + "\n"

    def message(self, ref: str = "main") -> str:
        return git(self.bare, "log", "-1", "--format=%B", ref)

    def head(self, ref: str = "main") -> str:
        return git(self.bare, "rev-parse", ref)

    def count(self, ref: str = "main") -> int:
        return int(git(self.bare, "rev-list", "--count", ref))

    def branches(self) -> list[str]:
        return git(self.bare, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()

    def commit_in_seed(self, path: str, text: str, message: str, branch: str = "main") -> None:
        git(self.seed, "fetch", "-q", "origin")
        start = f"origin/{branch}" if branch in self.branches() else "origin/main"
        git(self.seed, "checkout", "-q", "-B", branch, start)
        (self.seed / path).parent.mkdir(parents=True, exist_ok=True)
        (self.seed / path).write_text(text)
        git(self.seed, "add", path)
        git(self.seed, "commit", "-q", "-m", message)
        git(self.seed, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    bare, seed = tmp_path / "remote.git", tmp_path / "seed"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(tmp_path, "clone", "-q", str(bare), str(seed))
    git(seed, "checkout", "-q", "-b", "main")
    (seed / "deploy").mkdir()
    (seed / "deploy/inference.yaml").write_text(MANIFEST)
    (seed / "README.md").write_text("gitops repo\n")
    git(seed, "add", ".")
    git(seed, "commit", "-q", "-m", "seed")
    git(seed, "push", "-q", "origin", "main")
    return Remote(bare, seed)


def make_config(root: Path, *targets: DeployTarget, model: str = MODEL) -> Config:
    return Config(path=root / "ml.yaml", root=root, digest="0" * 64, version=1,
                  model=Model(model, "build/model"), tracking=Tracking("local", "iris"), params_file=None,
                  pipeline={}, compare=Compare(), promote=Promote(), deploy=tuple(targets), report=Report(),
                  rules=())


def seed_versions(registry: Registry, count: int = 3, model: str = MODEL) -> None:
    """Versions 1..count of `model`; the last one passed its criteria and is champion."""
    experiment = registry.get_or_create_experiment("iris")
    registry.get_or_create_registered_model(model)
    for number in range(1, count + 1):
        run = registry.create_run(experiment.experiment_id, f"train-{number}")
        lineage = {tags.VERDICT: "pass", tags.DECISION_SUMMARY: SUMMARY, tags.COMMIT: f"{number:040x}"}
        registry.create_model_version(model, f"runs:/{run.run_id}/model", run.run_id, lineage)
    registry.set_alias(model, "champion", str(count))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalRegistry]:
    registry = LocalRegistry(tmp_path / "project" / ".mlops-bot")
    seed_versions(registry)
    try:
        yield registry
    finally:
        registry.close()


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


@dataclass
class Receiver:
    """Answers each POST from `script` (status, headers), then 200; records every delivery."""

    secret: str
    deliveries: list[Delivery] = field(default_factory=list)
    script: collections.deque[tuple[int, dict[str, str]]] = field(default_factory=collections.deque)
    url: str = ""

    def answer(self, *steps: tuple[int, dict[str, str]]) -> None:
        self.script.extend(steps)

    def keys(self) -> Sequence[str]:
        return [d.headers["Idempotency-Key"] for d in self.deliveries]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(SECRET)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            expected = "sha256=" + hmac.new(state.secret.encode(), body, hashlib.sha256).hexdigest()
            signature = self.headers.get("X-MLOps-Bot-Signature", "")
            state.deliveries.append(Delivery(dict(self.headers), body, hmac.compare_digest(signature, expected)))
            status, headers = state.script.popleft() if state.script else (200, {})
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/deploy"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
