"""Run reuse: a runner with no local state finds the run that already trained the same inputs."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.pipeline.execute import run_pipeline
from mlops_bot.pipeline.result import RunOptions
from mlops_bot.registry.base import Registry
from tests.helpers.pipeline_project import cli, config, executions, make_project

QUIET = RunOptions(echo=lambda line: None)


def test_lost_local_state_is_restored_from_the_tracking_run(project: Path, registry: Registry,
                                                            counter: Path) -> None:
    first = run_pipeline(config(project), registry, QUIET)
    metrics = (project / "build" / "metrics.json").read_bytes()
    shutil.rmtree(project / "build")
    (project / "ml.lock").unlink()
    for name in ("hashes.json", "last-run.json"):
        (project / ".mlops-bot" / name).unlink()
    lines: list[str] = []
    again = run_pipeline(config(project), registry, RunOptions(echo=lines.append))
    assert [s.status for s in again.steps] == ["reused"] * 3
    assert again.reused and again.run_id == first.run_id and again.metrics == first.metrics
    assert executions(counter) == ["prepare", "train", "evaluate"]
    assert (project / "build" / "metrics.json").read_bytes() == metrics
    assert (project / "build" / "model" / "model.txt").read_text() == "C=0.5 rows=10\n"
    assert any(line.startswith(f"mlops-bot: reused run {first.run_id}") for line in lines)
    third = run_pipeline(config(project), registry, QUIET)
    assert [s.status for s in third.steps] == ["cached"] * 3 and third.run_id == first.run_id


def test_changed_inputs_do_not_reuse(project: Path, registry: Registry, counter: Path) -> None:
    run_pipeline(config(project), registry, QUIET)
    shutil.rmtree(project / "build")
    (project / "params.yaml").write_text("seed: 1\ntrain: {C: 3}\n")
    result = run_pipeline(config(project), registry, QUIET)
    assert not result.reused and [s.status for s in result.steps] == ["ran"] * 3


def test_force_never_reuses(project: Path, registry: Registry, counter: Path) -> None:
    run_pipeline(config(project), registry, QUIET)
    shutil.rmtree(project / "build")
    result = run_pipeline(config(project), registry, RunOptions(force=True, echo=lambda line: None))
    assert not result.reused and len(executions(counter)) == 6


@pytest.mark.mlflow
def test_a_fresh_ci_runner_reuses_the_run_from_the_mlflow_server(mlflow_server: Any, tmp_path: Path,
                                                                 counter: Path) -> None:
    experiment = f"reuse-{uuid.uuid4().hex[:8]}"
    pr_runner = make_project(tmp_path / "pr-runner", uri=mlflow_server.uri, experiment=experiment)
    first = cli(pr_runner, "--json", counter=counter)
    assert first.returncode == 0, first.stderr
    trained = json.loads(first.stdout)
    assert executions(counter) == ["prepare", "train", "evaluate"]
    env = json.loads((pr_runner / "build" / "env.json").read_text())
    assert env["MLFLOW_RUN_ID"] == trained["run_id"] and env["MLFLOW_TRACKING_URI"] == mlflow_server.uri

    merge_runner = make_project(tmp_path / "merge-runner", uri=mlflow_server.uri, experiment=experiment)
    assert not (merge_runner / "build").exists() and not (merge_runner / ".mlops-bot").exists()
    second = cli(merge_runner, "--json", counter=counter)
    assert second.returncode == 0, second.stderr
    doc = json.loads(second.stdout)
    assert executions(counter) == ["prepare", "train", "evaluate"]  # nothing retrained
    assert doc["reused"] is True and doc["run_id"] == trained["run_id"]
    assert [s["status"] for s in doc["steps"]] == ["reused"] * 3
    assert doc["metrics"] == trained["metrics"] == {"accuracy": 0.9, "rows": 10.0}
    assert f"reused run {trained['run_id']}" in second.stderr
    for out in ("build/metrics.json", "build/predictions.csv", "build/model/model.txt", "build/model/MLmodel",
                "build/train.csv", "build/test.csv"):
        assert (merge_runner / out).read_bytes() == (pr_runner / out).read_bytes(), out

    third = cli(merge_runner, "--json", counter=counter)
    assert [s["status"] for s in json.loads(third.stdout)["steps"]] == ["cached"] * 3
    assert executions(counter) == ["prepare", "train", "evaluate"]
