"""Progressive rollout with its real parts: versions in the real mlflow server's registry, `mlops-bot deploy` and
`mlops-bot rollout` as a user runs them, `mlflow models serve` behind each version's tap, the nginx front split
by weight, a real Prometheus scraping the taps (told where by the bot's file_sd file) and answering the analysis.

One scenario per module, clients scoring through the front all along: v1 served; v2 rolled out in steps and
completed; a bad v3 (it predicts label + 1, and its evaluation recorded that, so verification passes) aborted at
its first step by the prediction-shift query, traffic and the champion alias back on v2; v4 shadowed, the
deploying command killed mid-hold, `mlops-bot rollout --wait` resuming it without repeating the shadow or
shortening its hold."""

from __future__ import annotations

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
from mlops_bot.deploy import mlflow_serve
from mlops_bot.deploy.rollout.state import read_state
from mlops_bot.deploy.serving import SCRAPE_FILE, free_port, serving_dir
from mlops_bot.events.audit import EventLog, events_dir
from mlops_bot.registry import alias_holder, tags
from mlops_bot.registry.mlflow.client import MlflowRegistry
from tests.helpers.serving import PREDICTIONS, Clients, register, save_model, write_predictions, write_rows

pytestmark = [pytest.mark.slow, pytest.mark.mlflow]

SHIFT = ('abs(sum(rate(mlops_bot_prediction_sum{target="serve",version="$version"}[30s])) / '
         'sum(rate(mlops_bot_prediction_count{target="serve",version="$version"}[30s])) - '
         'sum(rate(mlops_bot_prediction_sum{target="serve",version="$previous"}[30s])) / '
         'sum(rate(mlops_bot_prediction_count{target="serve",version="$previous"}[30s])))')
ERRORS = 'sum(rate(mlops_bot_requests_total{target="serve",version="$version",code=~"5.."}[30s])) or vector(0)'
ML_YAML = """\
version: 1
model: {{name: {model}, artifact: build/model}}
tracking: {{uri: '{uri}', experiment: {model}}}
pipeline:
  train: {{cmd: "true", outs: [build/model]}}
  evaluate: {{cmd: "true", deps: [rows.csv, build/model], predictions: {predictions}}}
deploy:
  - name: serve
    type: mlflow_serve
    port: {port}
    timeout: 90
    verify: {{rows: rows.csv, drop: [label], agreement: 0.95, sample: 60}}
    rollout:
      metrics: '{metrics}'
      interval: 1s
{plan}
      analysis:
        - {{name: errors, query: '{errors}', max: 0.01}}
        - {{name: mean-prediction-shift, query: '{shift}', max: 0.3}}
"""
STEPS = "      steps: [{traffic: 30, hold: 8s}, {traffic: 100}]"
SHADOW = "      shadow: {share: 50, hold: 6s, min_agreement: 0.8}\n      steps: [{traffic: 100}]"


@dataclass
class Scenario:
    root: Path
    port: int
    model: str
    rows: list[list[float]]
    registry: MlflowRegistry
    runs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)

    @property
    def front(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def events(self, version: str) -> list[Any]:
        return [e for e in EventLog(events_dir(self.root)).read() if e.data.get("version") == version
                and (e.type.startswith("rollout.") or e.type.startswith("deployment."))]


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(root), *args], capture_output=True,
                          text=True, timeout=240, check=False)


def write_yaml(scenario: Scenario, metrics: str, plan: str, uri: str) -> None:
    (scenario.root / "ml.yaml").write_text(ML_YAML.format(
        model=scenario.model, uri=uri, predictions=PREDICTIONS, port=scenario.port, metrics=metrics, plan=plan,
        errors=ERRORS, shift=SHIFT))
    load_config(scenario.root / "ml.yaml")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, mlflow_server: Any,
             prometheus_session: Any) -> Iterator[Scenario]:
    prometheus = prometheus_session
    root = tmp_path_factory.mktemp("rollout") / "project"
    root.mkdir()
    features, labels = write_rows(root / "rows.csv", count=60)
    registry = MlflowRegistry(mlflow_server.uri, {})
    model = f"rollout-{os.getpid()}-{int(time.time())}"
    work = root.parent / "models"
    for number, c, shift in ((1, 1.0, 0), (2, 0.05, 0), (3, 1.0, 1), (4, 0.5, 0)):
        fitted = save_model(work / f"v{number}", features, labels + shift, c)
        write_predictions(work / f"p{number}" / PREDICTIONS, labels, fitted.predict(features))  # as served
        assert register(registry, work / f"v{number}", work / f"p{number}" / PREDICTIONS, model, model) == str(number)
    state = Scenario(root, free_port(), model, features[::7].tolist(), registry)
    write_yaml(state, prometheus.url, STEPS, mlflow_server.uri)
    scrape = serving_dir(root, "serve") / SCRAPE_FILE
    scrape.write_text("[]\n")
    prometheus.watch(scrape)
    try:
        _play(state, prometheus.url, mlflow_server.uri)
        yield state
    finally:
        mlflow_serve.stop(root, load_config(root / "ml.yaml").deploy[0])
        prometheus.unwatch(scrape)
        registry.close()


def _play(state: Scenario, metrics: str, uri: str) -> None:
    root, seen = state.root, state.seen
    state.runs["v1"] = cli(root, "deploy", "--version", "1")
    with Clients(state.front, state.rows, pause=0.02) as clients:
        state.runs["v2"] = cli(root, "deploy", "--version", "2")
        seen["v2 done"] = time.time()
        time.sleep(1)
    seen["during v2"] = clients.answers
    state.registry.set_alias(state.model, "champion", "3")  # as a merge that passed offline criteria leaves it
    state.registry.set_alias(state.model, "previous-champion", "2")
    with Clients(state.front, state.rows, pause=0.02) as clients:
        state.runs["v3"] = cli(root, "deploy", "--version", "3")
        seen["v3 done"] = time.time()
        time.sleep(2)
    seen["during v3"] = clients.answers
    write_yaml(state, metrics, SHADOW, uri)
    with Clients(state.front, state.rows, pause=0.02) as clients:
        seen["killed"] = _killed_mid_shadow(state)
        state.runs["resumed"] = cli(root, "rollout", "--wait")
        time.sleep(1)
    seen["during v4"] = clients.answers


def _killed_mid_shadow(state: Scenario) -> float:
    """`deploy --version 4` killed with SIGKILL once its shadow took effect; the time of the kill."""
    proc = subprocess.Popen([sys.executable, "-m", "mlops_bot", "-C", str(state.root), "deploy", "--version", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(e.type == "rollout.step_started" for e in state.events("4")):
            break
        time.sleep(0.1)
    time.sleep(1.5)  # into the hold
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    return time.time()


def _versions(answers: list[Any], start: float = 0, end: float = float("inf")) -> list[str]:
    return [version for at, version, _ in answers if start <= at <= end]


def test_a_first_version_takes_all_traffic(scenario: Scenario) -> None:
    run = scenario.runs["v1"]
    assert run.returncode == 0, run.stdout + run.stderr
    assert [e.type for e in scenario.events("1")][-2:] == ["rollout.completed", "deployment.succeeded"]


def test_a_good_version_rolls_out_in_steps_while_clients_are_split(scenario: Scenario) -> None:
    run, answers = scenario.runs["v2"], scenario.seen["during v2"]
    assert run.returncode == 0, run.stdout + run.stderr
    events = scenario.events("2")
    started = [e for e in events if e.type == "rollout.step_started"]
    assert [e.data["traffic"] for e in started] == [30, 100]
    step_one = _versions(answers, _stamp(started[0]), _stamp(started[1]))
    share = step_one.count("2") / len(step_one)
    assert len(step_one) > 50 and 0.2 < share < 0.4, (len(step_one), share)  # nginx's weights: 30 of 100
    passed = next(e for e in events if e.type == "rollout.step_passed")
    assert {f["name"]: f["outcome"] for f in passed.data["analysis"]} == {"errors": "pass",
                                                                          "mean-prediction-shift": "pass"}
    assert "error" not in _versions(answers)
    assert set(_versions(answers, scenario.seen["v2 done"])) == {"2"}  # v1 stopped, v2 serves all
    assert _stamp(started[1]) - _stamp(started[0]) >= 8  # the hold


def test_a_bad_version_aborts_at_its_first_step_and_the_old_one_serves_every_request(scenario: Scenario) -> None:
    run, answers = scenario.runs["v3"], scenario.seen["during v3"]
    assert run.returncode == 3, run.stdout + run.stderr
    events = scenario.events("3")
    rolled_back = [e for e in events if e.type == "deployment.rolled_back"]
    assert len(rolled_back) == 1 and rolled_back[0].data["rollout_step"] == 1 and rolled_back[0].data["traffic"] == 30
    assert "mean-prediction-shift" in rolled_back[0].data["reason"] and "fail" in rolled_back[0].data["reason"]
    assert rolled_back[0].data["alias_moves"] == "champion back to v2"
    assert not [e for e in events if e.type == "rollout.step_passed"]  # never advanced
    assert "error" not in _versions(answers)  # no client saw a failure, before, during or after
    after = _versions(answers, _stamp(rolled_back[0]) + 1)
    assert after and set(after) == {"2"}  # v3 takes no request once rolled back
    assert alias_holder(scenario.registry, scenario.model, "champion").version == "2"  # type: ignore[union-attr]
    version = scenario.registry.get_model_version(scenario.model, "3")
    assert version.tags[tags.deploy_status("serve")] == "failed"
    assert "rollout of v3 to serve" in version.tags[tags.ROLLED_BACK]
    assert read_state(version, "serve").phase == "aborted"  # type: ignore[union-attr]


def test_a_shadowed_version_is_compared_unseen_and_a_killed_rollout_resumes(scenario: Scenario) -> None:
    run, answers = scenario.runs["resumed"], scenario.seen["during v4"]
    assert run.returncode == 0, run.stdout + run.stderr
    events = scenario.events("4")
    shadow = [e for e in events if e.type == "rollout.step_started" and e.data["phase"] == "shadow"]
    reported = [e for e in events if e.type == "rollout.shadow_reported"]
    assert len(shadow) == 1 and len(reported) == 1  # resumed, not repeated
    assert reported[0].data["agreement"] >= 0.8 and reported[0].data["share"] == 50
    assert _stamp(reported[0]) - _stamp(shadow[0]) >= 6  # the hold was kept across the kill
    assert _stamp(reported[0]) > scenario.seen["killed"]  # the resuming command reported it
    assert set(_versions(answers, 0, _stamp(reported[0]))) == {"2"}  # no user saw v4 while it was shadowed
    assert [e.type for e in events][-2:] == ["rollout.completed", "deployment.succeeded"]
    assert set(_versions(answers, _stamp(events[-1]) + 1)) == {"4"}


def _stamp(event: Any) -> float:
    from datetime import datetime

    return datetime.fromisoformat(event.time.replace("Z", "+00:00")).timestamp()
