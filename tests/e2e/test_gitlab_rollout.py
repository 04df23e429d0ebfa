"""The GitLab CI/CD component's `rollout-schedule` end to end: `gitlab-ci-local` (shell executor) runs scheduled
pipelines of the default branch of a git repository holding the quickstart, whose `gitops` target rolls versions out
on a KServe manifest in a real bare git repository (canaryTrafficPercent commits), against the real mlflow server.
The test process deploys v1, then hands v2's rollout off after its first step (10 %); the `mlops-bot-rollout` job
must continue it from the state on the version in the registry alone: hold while the step's hold runs, finish at
100 once it is over, then find nothing to do. Which jobs other pipelines get is read from gitlab-ci-local's list."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from mlops_bot.config import load_config
from mlops_bot.registry import open_registry
from tests.e2e.runners import Run, run_gitlab_ci_local
from tests.e2e.test_rollout_action import (
    QUICKSTART_DEPLOY,
    TARGET,
    assert_finished,
    deploy,
    gitops_deploy,
    history,
    on_version,
)
from tests.helpers.e2e import ROOT, Repo, git, host_env, make_repo, tool
from tests.helpers.gitops import Remote
from tests.helpers.registries import add_version
from tests.servers.mlflow_server import MlflowServer

pytestmark = [pytest.mark.e2e, pytest.mark.mlflow]

PIPELINE = """\
stages: [test]
include:
  - local: templates/mlops-bot.yml
    inputs:
      tracking-uri: {uri}
{inputs}"""
JOBS = ("mlops-bot-mr-check", "mlops-bot-promote", "mlops-bot-gate", "mlops-bot-drift", "mlops-bot-rollout")


def set_inputs(repo: Repo, uri: str, inputs: str) -> None:
    (repo.path / ".gitlab-ci.yml").write_text(PIPELINE.format(uri=uri, inputs=inputs))
    git(repo.path, "commit", "--quiet", "--all", "--allow-empty", "--message", f"inputs: {inputs.strip() or '-'}")


def set_hold(repo: Repo, bare: Path, hold_s: int) -> None:
    config = repo.path / "ml.yaml"
    text, replaced = re.subn(r"hold: \d+s", f"hold: {hold_s}s", config.read_text())
    assert replaced == 1, "gitops_deploy changed shape; update this test"
    config.write_text(text)
    git(repo.path, "commit", "--quiet", "--all", "--message", f"hold the 10 % step {hold_s} s")


def make_project(root: Path, bare: Path, uri: str) -> Repo:
    files = {".gitlab-ci.yml": PIPELINE.format(uri=uri, inputs="      rollout-schedule: true\n"),
             "templates/mlops-bot.yml": (ROOT / "templates" / "mlops-bot.yml").read_text()}
    repo = make_repo(root / "project", "main", "git@gitlab.example.com:group/project.git", files)
    config = repo.path / "ml.yaml"
    text = config.read_text()
    assert QUICKSTART_DEPLOY in text, "the quickstart's deploy: section changed shape; update this test"
    config.write_text(text.replace(QUICKSTART_DEPLOY, gitops_deploy(bare)))
    git(repo.path, "commit", "--quiet", "--all", "--message", "deploy through gitops with a rollout")
    return Repo(repo.path, git(repo.path, "rev-parse", "HEAD"), repo.model)


def listed_jobs(repo: Path, variables: Mapping[str, str]) -> set[str]:
    """The component's jobs whose rules let them run in a pipeline with `variables` (gitlab-ci-local's list)."""
    cmd = [str(tool("node")), str(tool("gitlab-ci-local")), "--list-csv"]
    for key, value in variables.items():
        cmd += ["--variable", f"{key}={value}"]
    done = subprocess.run(cmd, cwd=repo, env=host_env({"HOME": str(repo.parent)}), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = csv.reader(io.StringIO(done.stdout), delimiter=";")
    return {row[0] for row in rows if row and row[0] in JOBS}


def test_scheduled_pipelines_continue_a_handed_off_rollout_from_the_registry(
        tmp_path_factory: pytest.TempPathFactory, mlflow_server: MlflowServer, pip_offline: dict[str, str]) -> None:
    root = tmp_path_factory.mktemp("gitlab-rollout")
    remote = Remote.create(root)
    project = make_project(root, remote.bare, mlflow_server.uri)
    config = load_config(project.path / "ml.yaml", env={"MLFLOW_TRACKING_URI": mlflow_server.uri})
    registry = open_registry(mlflow_server.uri, project.path)
    try:
        v1, v2 = (add_version(registry, config, tmp_path_factory.mktemp("runs")) for _ in range(2))
    finally:
        registry.close()
    scratch = tmp_path_factory.mktemp("job-tmp")

    def scheduled() -> Run:
        # TMPDIR and CI_JOB_ID keep the bot's venv between the runs (the template's path), so a run takes seconds.
        variables = {"CI_PIPELINE_SOURCE": "schedule", "TMPDIR": str(scratch), "CI_JOB_ID": "1",
                     "MLOPS_BOT_RETRY_SECONDS": "5", **pip_offline}
        return run_gitlab_ci_local(project.path, variables)

    uri1, uri2 = (f"models:/{project.model}/{v}" for v in (v1, v2))
    # v1 is the target's first version: nothing served before, so it takes all traffic at once.
    assert deploy(config, mlflow_server.uri, project, v1) == ["succeeded"]
    assert history(remote) == [(uri1, 100)]
    idle = scheduled()  # nothing in progress; this run also builds the bot's venv
    assert idle.returncode == 0 and "PASS  mlops-bot-rollout" in idle.output, idle.explain()
    assert "mlops-bot-promote" not in idle.output, "a scheduled pipeline is the rollout's, not a promotion"
    assert f"no rollout of {project.model} is in progress" in idle.output, idle.explain()
    started = time.monotonic()
    warm = scheduled()
    # The 10 % step's hold: well over what a run with the venv built takes, so the next run comes before its end.
    hold_s = int(3 * (time.monotonic() - started)) + 5
    assert warm.returncode == 0, warm.explain()
    set_hold(project, remote.bare, hold_s)
    config = load_config(project.path / "ml.yaml", env={"MLFLOW_TRACKING_URI": mlflow_server.uri})

    started = time.monotonic()
    assert deploy(config, mlflow_server.uri, project, v2, wait=False) == ["rolling_out"]
    assert history(remote) == [(uri1, 100), (uri2, 10)]
    early = scheduled()
    assert time.monotonic() - started < hold_s, f"gitlab-ci-local took longer than the {hold_s} s hold"
    assert early.returncode == 0 and "PASS  mlops-bot-rollout" in early.output, early.explain()
    assert f"{TARGET}: rolling_out:" in early.output and "holding until" in early.output, early.explain()
    assert history(remote) == [(uri1, 100), (uri2, 10)], "a step was taken before its hold was over"
    state, _ = on_version(mlflow_server.uri, project, v2)
    assert state is not None and (state.phase, state.traffic) == ("step", 10)

    time.sleep(max(0.0, started + hold_s + 1 - time.monotonic()))
    done = scheduled()
    assert done.returncode == 0 and "PASS  mlops-bot-rollout" in done.output, done.explain()
    assert f"{TARGET}: succeeded:" in done.output, done.explain()
    assert "mlops-bot-promote" not in done.output and "could not be found" not in done.output, done.explain()
    assert_finished(remote, (uri1, uri2), mlflow_server.uri, project, v2)

    after = scheduled()
    assert after.returncode == 0, after.explain()
    assert f"no rollout of {project.model} is in progress" in after.output, after.explain()
    assert len(history(remote)) == 3


@pytest.mark.parametrize(("inputs", "source", "expected"), [
    ("      rollout-schedule: true\n", "schedule", {"mlops-bot-rollout"}),
    ("      rollout-schedule: true\n      drift-schedule: true\n", "schedule",
     {"mlops-bot-rollout", "mlops-bot-drift"}),
    ("      rollout-schedule: false\n", "schedule", {"mlops-bot-promote"}),
    ("", "schedule", {"mlops-bot-promote"}),
    ("      rollout-schedule: true\n", "push", {"mlops-bot-promote"}),
    ("      rollout-schedule: true\n", "web", {"mlops-bot-promote"}),
])
def test_only_scheduled_pipelines_with_the_input_get_the_rollout_job(
        tmp_path: Path, inputs: str, source: str, expected: set[str]) -> None:
    remote = Remote.create(tmp_path)
    project = make_project(tmp_path, remote.bare, "http://127.0.0.1:1")
    set_inputs(project, "http://127.0.0.1:1", inputs)
    assert listed_jobs(project.path, {"CI_PIPELINE_SOURCE": source}) == expected


def test_a_scheduled_pipeline_of_another_branch_gets_no_rollout_job(tmp_path: Path) -> None:
    remote = Remote.create(tmp_path)
    project = make_project(tmp_path, remote.bare, "http://127.0.0.1:1")
    git(project.path, "checkout", "--quiet", "-b", "feature")
    assert listed_jobs(project.path, {"CI_PIPELINE_SOURCE": "schedule"}) == set()
