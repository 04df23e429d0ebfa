"""`mlops-bot ci` in each context: a real pipeline on the embedded store, the local GitHub server, real
event payloads."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from mlops_bot import cli
from mlops_bot.registry import alias_holder, open_registry, tags
from tests.forges.conftest import HEAD_SHA, apply_env, clean_env, github, github_env  # noqa: F401 (fixtures)
from tests.forges.test_ciout import parse_github_outputs
from tests.servers.github_server import GitHubServer

pytestmark = pytest.mark.usefixtures("clean_env")

TRAIN = """\
import json, os, sys
accuracy = float(open("quality.txt").read())
os.makedirs("build/model", exist_ok=True)
open("build/model/weights.txt", "w").write(str(accuracy))
json.dump({"accuracy": accuracy}, open("build/metrics.json", "w"))
"""
ML_YAML = """\
version: 1
model: {name: iris-classifier, artifact: build/model}
pipeline:
  train:
    cmd: [python, train.py]
    deps: [train.py, quality.txt]
    outs: [build/model]
    metrics: build/metrics.json
compare:
  criteria:
    - {metric: accuracy, threshold: 0.5, min_absolute_change: 0.01}
promote: {on: [push]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text(TRAIN)
    (root / "quality.txt").write_text("0.8\n")
    (root / "ml.yaml").write_text(textwrap.dedent(ML_YAML))
    return root


def ci(project: Path) -> int:
    return cli.main(["-C", str(project), "ci"])


def test_local_check_writes_report_and_decision(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ci(project) == 0
    decision = json.loads((project / ".mlops-bot" / "decision.json").read_text())
    assert decision["verdict"] == "pass" and decision["bootstrap"] is True
    assert "mlops-bot:report model=iris-classifier" in (project / ".mlops-bot" / "report.md").read_text()


def test_pull_request_then_merge_on_github(project: Path, github: GitHubServer, tmp_path: Path,  # noqa: F811
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    env = github_env(github, tmp_path / "runner")
    apply_env(monkeypatch, env)
    assert ci(project) == 0
    (comment,) = github.comments_on(2)
    assert "Bootstrap" in comment["body"] or "bootstrap" in comment["body"]
    assert [(s["sha"], s["state"]) for s in github.statuses] == [(HEAD_SHA, "success")]
    (check,) = github.check_runs  # the Actions token may create check runs: the report shows in the Checks tab
    assert (check["head_sha"], check["conclusion"]) == (HEAD_SHA, "success")
    assert "| metric |" in check["output"]["summary"]
    outputs = parse_github_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
    assert outputs["verdict"] == "pass" and outputs["promoted"] == "false" and outputs["run-id"]
    assert Path(outputs["report-path"]).is_file()
    registry = open_registry("local", project)
    assert alias_holder(registry, "iris-classifier", "champion") is None  # a PR check never promotes

    push = github_env(github, tmp_path / "runner-push", event="push", payload="push-with-new-branch.payload.json")
    apply_env(monkeypatch, {**push, "GITHUB_REF": "refs/heads/master", "GITHUB_SHA": "6113728f" * 5})
    assert ci(project) == 0
    outputs = parse_github_outputs(Path(push["GITHUB_OUTPUT"]).read_text())
    assert (outputs["promoted"], outputs["model-version"]) == ("true", "1")
    assert outputs["run-id"] == parse_github_outputs(Path(env["GITHUB_OUTPUT"]).read_text())["run-id"]  # reused
    champion = alias_holder(registry, "iris-classifier", "champion")
    assert champion is not None and champion.version == "1"
    assert len(champion.tags[tags.DATA_HASH]) == 64 and champion.tags[tags.RUN_ID] == outputs["run-id"]
    assert champion.tags[tags.REPOSITORY] == "Codertocat/Hello-World"

    release = github_env(github, tmp_path / "runner-release", event="release",
                         payload="release-published.payload.json")
    apply_env(monkeypatch, release)
    assert ci(project) == 0
    assert parse_github_outputs(Path(release["GITHUB_OUTPUT"]).read_text())["gate"] == "open"


def test_a_worse_change_is_refused_with_exit_1(project: Path, github: GitHubServer, tmp_path: Path,  # noqa: F811
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    push = github_env(github, tmp_path / "push", event="push", payload="push-with-new-branch.payload.json")
    apply_env(monkeypatch, push)
    assert ci(project) == 0
    (project / "quality.txt").write_text("0.6\n")
    apply_env(monkeypatch, github_env(github, tmp_path / "pr"))
    assert ci(project) == 1
    (comment,) = github.comments_on(2)
    assert "accuracy" in comment["body"] and github.statuses[-1]["state"] == "failure"


def test_unhandled_event_is_a_notice(project: Path, github: GitHubServer, tmp_path: Path,  # noqa: F811
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    apply_env(monkeypatch, github_env(github, tmp_path / "r", event="issue_comment",
                                      payload="issue_comment-created.payload.json"))
    assert ci(project) == 0
    assert "::notice::mlops-bot: nothing to do" in capsys.readouterr().out
    assert not (project / ".mlops-bot").exists()
