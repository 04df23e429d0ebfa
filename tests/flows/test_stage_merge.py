"""A merge under promote.stages, through `mlops-bot ci` against the GitHub stand-in: it is judged by the entry
stage's own criteria, waits for the entry stage's approval (a maintainer's review of the pull request that trained
the run, found through the run's pull request tag) with the report still posted, and `deploy --stage` and the
`deploy` action run only the stage's targets."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from mlops_bot import cli
from mlops_bot.events.event import Event
from mlops_bot.flows.actions import deploy
from mlops_bot.flows.project import Project
from mlops_bot.lifecycle.approvals import read_approval
from mlops_bot.registry import alias_holder, open_registry, tags
from tests.helpers.ci_env import apply_env, github_env, parse_github_outputs
from tests.helpers.projects import QUALITY_TRAIN
from tests.servers.github_server import GitHubServer

pytestmark = pytest.mark.usefixtures("clean_env")

ML_YAML = """\
version: 1
model: {{name: iris-classifier, artifact: build/model}}
pipeline:
  train:
    cmd: [python, train.py]
    deps: [train.py, quality.txt]
    outs: [build/model]
    metrics: build/metrics.json
compare:
  criteria:
    - {{metric: accuracy, threshold: 0.5}}
promote:
  on: [push]
  stages:
    - alias: staging
      criteria: [{{metric: accuracy, threshold: {staging_threshold}}}]
      deploy: [staging-record]
      approval: {{permission: maintain, via: [review]}}
    - {{alias: production, requires: staging, deploy: [production-record]}}
deploy:
  - {{name: staging-record, type: command, cmd: "echo staging-$MODEL_VERSION >> deployed.txt"}}
  - {{name: production-record, type: command, cmd: "echo production-$MODEL_VERSION >> deployed.txt"}}
"""
PUSH_SHA = "6113728f" * 5


def make_project(tmp_path: Path, staging_threshold: float = 0.7) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text(QUALITY_TRAIN)
    (root / "quality.txt").write_text("0.8\n")
    (root / "ml.yaml").write_text(textwrap.dedent(ML_YAML.format(staging_threshold=staging_threshold)))
    return root


def ci(project: Path) -> int:
    return cli.main(["-C", str(project), "ci"])


def check_then_merge(project: Path, github: GitHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     runner: str) -> dict[str, str]:
    """The pull request's check, then the merge's push; the push's outputs."""
    apply_env(monkeypatch, github_env(github, tmp_path / f"{runner}-pr"))
    assert ci(project) == 0
    push = github_env(github, tmp_path / f"{runner}-push", event="push", payload="push-with-new-branch.payload.json")
    apply_env(monkeypatch, {**push, "GITHUB_REF": "refs/heads/master", "GITHUB_SHA": PUSH_SHA})
    code = ci(project)
    outputs = parse_github_outputs(Path(push["GITHUB_OUTPUT"]).read_text())
    outputs["exit"] = str(code)
    return outputs


def test_a_merge_waits_for_the_entry_stages_review_approval(tmp_path: Path, github: GitHubServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path)
    github.add_collaborator("wes", "write")
    github.add_collaborator("maya", "maintain")
    github.add_review(2, "wes", "APPROVED")  # a writer's review does not count for a maintain stage

    outputs = check_then_merge(project, github, tmp_path, monkeypatch, "first")
    assert (outputs["exit"], outputs["promoted"]) == ("1", "false")
    assert outputs["verdict"] == "pass" and Path(outputs["report-path"]).is_file()  # the report is still out
    registry = open_registry("local", project)
    assert alias_holder(registry, "iris-classifier", "staging") is None
    (version,) = registry.search_model_versions("iris-classifier")  # registered, waiting for its approval
    assert version.tags[tags.PULL_REQUEST] == "2"  # from the run the pull request's check tagged
    assert read_approval(version, "staging") is None and not (project / "deployed.txt").exists()

    github.add_review(2, "maya", "APPROVED")
    outputs = check_then_merge(project, github, tmp_path, monkeypatch, "second")
    assert (outputs["exit"], outputs["promoted"]) == ("0", "true")
    staging = alias_holder(registry, "iris-classifier", "staging")
    assert staging is not None and staging.version == version.version
    approval = read_approval(staging, "staging")
    assert approval is not None and (approval.by, approval.via, approval.role) == ("maya", "review", "maintain")
    assert (project / "deployed.txt").read_text().split() == [f"staging-{version.version}"]


def test_a_merge_is_judged_by_the_entry_stages_own_criteria(tmp_path: Path, github: GitHubServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path, staging_threshold=0.9)  # compare asks 0.5 (passes), staging 0.9 (fails)
    github.add_collaborator("maya", "maintain")
    github.add_review(2, "maya", "APPROVED")
    outputs = check_then_merge(project, github, tmp_path, monkeypatch, "strict")
    assert (outputs["exit"], outputs["verdict"], outputs["promoted"]) == ("1", "fail", "false")
    decision = json.loads((project / ".mlops-bot" / "decision.json").read_text())
    assert "0.9" in json.dumps(decision["criteria"])
    assert alias_holder(open_registry("local", project), "iris-classifier", "staging") is None


def test_deploy_by_stage_runs_only_that_stages_targets(tmp_path: Path, github: GitHubServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path)
    github.add_collaborator("maya", "maintain")
    github.add_review(2, "maya", "APPROVED")
    outputs = check_then_merge(project, github, tmp_path, monkeypatch, "deploy")
    version = outputs["model-version"]
    records = project / "deployed.txt"
    assert records.read_text().split() == [f"staging-{version}"]

    assert cli.main(["-C", str(project), "deploy", "--stage", "staging", "--force"]) == 0
    assert records.read_text().split() == [f"staging-{version}"] * 2
    assert cli.main(["-C", str(project), "deploy", "--stage", "production"]) == 2  # nobody holds production yet

    event = Event("alias.moved", f"models/iris-classifier/versions/{version}",
                  {"model": "iris-classifier", "alias": "staging", "version": version})
    with Project(project, env={}) as opened:
        assert deploy(opened, event) is True
    # staging's move never ships to production's target, whatever `on:` rule fired
    assert records.read_text().split() == [f"staging-{version}"] * 2
