"""The whole loop with GitLab's MLflow API as the tracking server and registry (the stand-in built route by
route from GitLab's source, tests/servers/gitlab_mlflow.py), as subprocesses of the real CLI.

The issue's wrong-model case: GitLab's `runs/search` has no filter, so it answers every run of the
experiment; a fresh runner must still reuse only the run with its own pipeline key (or retrain), never the
newest run of another configuration."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.pipeline_project import COUNTER_ENV, executions, make_project
from tests.servers.gitlab_mlflow import TOKEN, GitLabMlflowServer

pytestmark = pytest.mark.slow  # a dozen CLI subprocesses


def bot(project: Path, *args: str, counter: Path, expect: int = 0) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_TRACKING_TOKEN=TOKEN, **{COUNTER_ENV: str(counter)})
    done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(project), *args, "--json"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == expect, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def fresh_runner(source: Path, path: Path, c: str) -> Path:
    """A copy of the project as a new CI runner has it (no build/, no .mlops-bot/, no ml.lock), with train.C."""
    shutil.copytree(source, path, ignore=shutil.ignore_patterns("build", ".mlops-bot", "ml.lock"))
    (path / "params.yaml").write_text(f"seed: 1\ntrain: {{C: {c}}}\n")
    return path


def test_a_fresh_runner_reuses_only_the_run_of_its_own_configuration(gitlab_mlflow: GitLabMlflowServer,
                                                                      tmp_path: Path) -> None:
    counter = tmp_path / "executions"
    project = make_project(tmp_path / "project", uri=gitlab_mlflow.tracking_uri, experiment=f"gl-{tmp_path.name}")
    first = bot(project, "run", counter=counter)  # C=0.5
    (project / "params.yaml").write_text("seed: 1\ntrain: {C: 0.01}\n")
    newest = bot(project, "run", counter=counter)  # the newest run of the experiment, another model
    assert executions(counter) == ["prepare", "train", "evaluate", "train", "evaluate"]

    same = fresh_runner(project, tmp_path / "runner-same", "0.5")
    reused = bot(same, "run", counter=counter)
    assert reused["reused"] is True and reused["run_id"] == first["run_id"] != newest["run_id"]
    assert (same / "build" / "model" / "model.txt").read_text() == "C=0.5 rows=10\n"  # the right model

    other = fresh_runner(project, tmp_path / "runner-other", "3")
    retrained = bot(other, "run", counter=counter)
    assert retrained["reused"] is False and retrained["run_id"] not in (first["run_id"], newest["run_id"])
    assert executions(counter)[5:] == ["prepare", "train", "evaluate"]


def test_promote_gate_and_status_keep_their_records_where_gitlab_lets_them(gitlab_mlflow: GitLabMlflowServer,
                                                                         tmp_path: Path) -> None:
    counter = tmp_path / "executions"
    project = make_project(tmp_path / "project", uri=gitlab_mlflow.tracking_uri, experiment=f"gl-{tmp_path.name}")
    config = project / "ml.yaml"
    config.write_text(config.read_text().replace("name: demo-model", f"name: gl-model-{tmp_path.name[-20:]}")
                      + "compare:\n  criteria:\n    - {metric: accuracy, threshold: 0.5}\n")
    run = bot(project, "run", counter=counter)
    promoted = bot(project, "promote", counter=counter)
    assert promoted["promoted"] is True, promoted
    again = bot(project, "promote", counter=counter)  # a re-run changes nothing, registers nothing twice
    assert again["version"] == promoted["version"]
    gate = bot(project, "gate", counter=counter)
    assert gate["open"] is True and gate["version"] == promoted["version"], gate
    status = bot(project, "status", counter=counter)
    assert run["run_id"] in json.dumps(status)


def test_history_and_protected_aliases_live_in_gitlabs_version_records(gitlab_mlflow: GitLabMlflowServer,
                                                                       tmp_path: Path) -> None:
    """GitLab has no version tags (the bot's records live in the description) and no aliases (emulated): the move
    records that history and the protected-alias check read must survive both."""
    counter = tmp_path / "executions"
    project = make_project(tmp_path / "project", uri=gitlab_mlflow.tracking_uri, experiment=f"gl-{tmp_path.name}")
    config = project / "ml.yaml"
    config.write_text(config.read_text().replace("name: demo-model", f"name: gl-hist-{tmp_path.name[-20:]}")
                      + "compare:\n  criteria:\n    - {metric: accuracy, threshold: 0.5}\n"
                      + "promote: {protected: [champion]}\n")
    bot(project, "run", counter=counter)
    promoted = bot(project, "promote", counter=counter)
    assert promoted["promoted"] is True, promoted
    history = bot(project, "history", counter=counter)
    (move,) = history["moves"]
    assert (move["alias"], move["version"], move["previous"], move["verdict"]) == \
        ("champion", promoted["version"], None, "pass"), move
    status = bot(project, "status", counter=counter)
    assert status["protected"] == [], status  # the alias is where the bot's record says
    gate = bot(project, "gate", counter=counter)
    assert gate["open"] is True, gate
