"""The mlflow_serve target with its real parts: `mlops-bot deploy` as a user runs it (a subprocess that exits while
its servers go on), `mlflow models serve` per version, an nginx front the bot configures, real MLflow Models in
the embedded registry (and one deployment from the real mlflow server).

One rollout per module, its steps recorded by the `rollout` fixture and checked by the tests: v1 deployed and
scored through the front; v2 verified, the front switched and v1 stopped; a bad v3 (it predicts label + 1 while
its evaluation recorded the right labels) refused with exit 3, v2 answering every request meanwhile; v2 again is
up to date; v2's server killed, a deploy starts it again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.config import load_config
from mlops_bot.config.model import DeployTarget, Verify
from mlops_bot.deploy import DeployOptions, deploy_all, mlflow_serve
from mlops_bot.deploy.serving import alive, free_port, read_state, serving_dir
from mlops_bot.registry.local.store import LocalRegistry
from mlops_bot.registry.tags import deploy_tag
from tests.helpers.deploy import make_config
from tests.helpers.serving import (
    MODEL,
    PREDICTIONS,
    Clients,
    register,
    save_model,
    score,
    wait_gone,
    write_predictions,
    write_rows,
)

pytestmark = pytest.mark.slow

ML_YAML = """\
version: 1
model: {{name: {model}, artifact: build/model}}
tracking: {{uri: local, experiment: serve}}
pipeline:
  train: {{cmd: "true", outs: [build/model]}}
  evaluate: {{cmd: "true", deps: [rows.csv, build/model], predictions: {predictions}}}
deploy:
  - name: local
    type: mlflow_serve
    port: {port}
    timeout: 90
    verify: {{rows: rows.csv, drop: [label], agreement: 0.95, sample: 100}}
"""


@dataclass
class Rollout:
    root: Path
    port: int
    rows: list[list[float]]
    labels: list[int]
    runs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)

    @property
    def front(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(root), "deploy", "--target", "local", *args],
                          capture_output=True, text=True, timeout=180, check=False)


def live(root: Path) -> Any:
    return read_state(serving_dir(root, "local"), "local").live


@pytest.fixture(scope="module")
def rollout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rollout]:
    root = tmp_path_factory.mktemp("serve") / "project"
    root.mkdir()
    features, labels = write_rows(root / "rows.csv")
    registry = LocalRegistry(root / ".mlops-bot")
    work = root.parent / "models"
    for number, c, shift in ((1, 1.0, 0), (2, 0.05, 0), (3, 1.0, 1)):
        model = save_model(work / f"v{number}", features, labels + shift, c)
        recorded = model.predict(features) - shift  # v3's evaluation recorded the right labels; it serves label + 1
        write_predictions(work / f"p{number}" / PREDICTIONS, labels, recorded)
        assert register(registry, work / f"v{number}", work / f"p{number}" / PREDICTIONS) == str(number)
    registry.close()
    port = free_port()
    (root / "ml.yaml").write_text(ML_YAML.format(model=MODEL, predictions=PREDICTIONS, port=port))
    load_config(root / "ml.yaml")
    state = Rollout(root, port, features[:5].tolist(), [int(v) for v in labels[:5]])
    try:
        _play(state)
        yield state
    finally:
        target = load_config(root / "ml.yaml").deploy[0]
        mlflow_serve.stop(root, target)


def _play(state: Rollout) -> None:
    """The rollout, each step's output and observations kept for the tests."""
    root, seen = state.root, state.seen
    state.runs["v1"] = cli(root, "--version", "1")
    seen["v1"] = live(root)
    seen["v1 answer"] = score(state.front, state.rows)
    with Clients(state.front, state.rows) as hammer:
        state.runs["v2"] = cli(root, "--version", "2")
    seen["during v2"] = [version for _, version, _ in hammer.answers]
    seen["v2"] = live(root)
    seen["v2 answer"] = score(state.front, state.rows)
    seen["v1 stopped"] = wait_gone(seen["v1"].pid)
    seen["orphan"] = _killed_half_way(root)
    seen["orphan alive"] = alive(seen["orphan"])
    with Clients(state.front, state.rows) as hammer:
        state.runs["v3"] = cli(root, "--version", "3")
    seen["during v3"] = [(version, got) for _, version, got in hammer.answers]
    seen["after v3"] = live(root)
    seen["v3 dirs"] = sorted(p.name for p in serving_dir(root, "local").iterdir() if p.name.startswith("v3-"))
    state.runs["v2 again"] = cli(root, "--version", "2")
    os.killpg(seen["v2"].pid, signal.SIGKILL)
    wait_gone(seen["v2"].pid)
    state.runs["v2 dead"] = cli(root, "--version", "2")
    seen["restarted"] = live(root)
    seen["restarted answer"] = score(state.front, state.rows)


def _killed_half_way(root: Path) -> int:
    """A `deploy --version 1 --force` killed once its server started: that server's pid (left running)."""
    proc = subprocess.Popen([sys.executable, "-m", "mlops_bot", "-C", str(root), "deploy", "--target", "local",
                             "--version", "1", "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, pid = time.monotonic() + 60, ""
    while not pid.strip() and time.monotonic() < deadline and proc.poll() is None:
        pid = "".join(path.read_text() for path in serving_dir(root, "local").glob("v1-*/server.pid"))
        time.sleep(0.05)
    proc.kill()
    proc.wait(10)
    assert pid.strip(), "the killed deploy started no server"
    return int(pid)


def test_first_version_is_served_through_the_front(rollout: Rollout) -> None:
    run = rollout.runs["v1"]
    assert run.returncode == 0, run.stderr
    assert "verified: agreement 1.0000 on 100 rows" in run.stdout + run.stderr
    predictions, version = rollout.seen["v1 answer"]
    assert version == "1" and predictions == rollout.labels
    assert rollout.seen["v1"].version == "1" and rollout.seen["v1"].port != rollout.port


def test_a_verified_version_takes_the_front_and_the_previous_one_stops(rollout: Rollout) -> None:
    run, seen = rollout.runs["v2"], rollout.seen
    assert run.returncode == 0, run.stderr
    assert seen["v2"].version == "2" and seen["v2"].pid != seen["v1"].pid
    assert seen["v2 answer"][1] == "2"
    assert seen["v1 stopped"], "v1's server still runs after the switch"
    during = seen["during v2"]  # v1 answers until the switch (and its last requests during nginx's reload), v2
    assert set(during) == {"1", "2"} and during[-1] == "2", during  # then: no request lost
    assert not any(p.name.startswith("v1-") for p in serving_dir(rollout.root, "local").iterdir())


def test_a_bad_version_fails_verification_and_traffic_stays(rollout: Rollout) -> None:
    run, seen = rollout.runs["v3"], rollout.seen
    assert run.returncode == 3, run.stdout + run.stderr
    assert "v3 failed verification before traffic: agreement 0.0" in run.stdout + run.stderr
    assert seen["after v3"] == seen["v2"]  # the state still names v2, same server
    answers = seen["during v3"]
    assert len(answers) > 10 and all(version == "2" and got == rollout.labels for version, got in answers), answers[:3]
    assert seen["v3 dirs"] == []  # its server stopped, its model removed


def test_a_server_left_by_a_killed_deploy_is_stopped_by_the_next(rollout: Rollout) -> None:
    assert rollout.seen["orphan alive"]  # it outlived the killed command
    assert wait_gone(rollout.seen["orphan"], timeout=1)
    assert not list(serving_dir(rollout.root, "local").glob("v1-*"))
    registry = LocalRegistry(rollout.root / ".mlops-bot")
    try:
        tags = registry.get_model_version(MODEL, "3").tags
    finally:
        registry.close()
    assert tags[deploy_tag("local", "status")] == "failed"
    evidence = json.loads(tags[deploy_tag("local", "verify")])
    assert evidence["passed"] is False and evidence["rows"] == 100 and evidence["agreement"] < 0.95
    assert evidence["p95_ms"] > 0 and "agreement" in tags[deploy_tag("local", "detail")]


def test_the_live_version_is_up_to_date_and_a_dead_server_restarts(rollout: Rollout) -> None:
    again, dead, seen = rollout.runs["v2 again"], rollout.runs["v2 dead"], rollout.seen
    assert again.returncode == 0 and "up to date: v2" in again.stdout, again.stdout + again.stderr
    assert dead.returncode == 0, dead.stderr
    assert "up to date" not in dead.stdout
    assert seen["restarted"].version == "2" and seen["restarted"].pid != seen["v2"].pid
    assert seen["restarted answer"] == (rollout.labels, "2")


def test_the_servers_outlive_the_command_and_stop_leaves_nothing(rollout: Rollout) -> None:
    state = live(rollout.root)
    assert alive(state.pid)  # started by a `mlops-bot deploy` that has exited
    target = load_config(rollout.root / "ml.yaml").deploy[0]
    front_pid = int((serving_dir(rollout.root, "local") / "front" / "nginx.pid").read_text())
    stopped = cli(rollout.root, "--stop")  # `mlops-bot deploy --target local --stop`
    assert (stopped.returncode, stopped.stdout) == (0, "local: stopped v2\n"), stopped.stderr
    assert wait_gone(state.pid) and wait_gone(front_pid)
    assert live(rollout.root) is None
    assert mlflow_serve.stop(rollout.root, target) == "nothing was serving"


@pytest.mark.mlflow
def test_a_version_from_the_mlflow_server_is_served(registry_factory: Any, tmp_path: Path) -> None:
    registry = registry_factory("mlflow")
    features, labels = write_rows(tmp_path / "rows.csv", count=60)
    model = save_model(tmp_path / "model", features, labels)
    write_predictions(tmp_path / "p" / PREDICTIONS, labels, model.predict(features))
    version = register(registry, tmp_path / "model", tmp_path / "p" / PREDICTIONS, experiment="serve-remote")
    target = DeployTarget(name="remote", type="mlflow_serve", port=free_port(), timeout=90,
                          verify=Verify(rows="rows.csv", drop=("label",), predictions=PREDICTIONS))
    config = make_config(tmp_path, target, model=MODEL)
    try:
        [result] = deploy_all(config, registry, version, DeployOptions(echo=lambda _: None))
        assert result.status == "succeeded", result.detail
        predictions, served = score(f"http://127.0.0.1:{target.port}", features[:3].tolist())
        assert served == version and predictions == [int(v) for v in labels[:3]]
        evidence = json.loads(registry.get_model_version(MODEL, version).tags[deploy_tag("remote", "verify")])
        assert evidence["passed"] is True and evidence["rows"] == 60
    finally:
        mlflow_serve.stop(tmp_path, target)
