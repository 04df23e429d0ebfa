"""`mlops-bot ci` in each context: a real pipeline on the embedded store, the local GitHub server, real
event payloads."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from mlops_bot import cli
from mlops_bot.registry import alias_holder, open_registry, tags
from tests.helpers.ci_env import HEAD_SHA, apply_env, github_env, parse_github_outputs
from tests.helpers.projects import QUALITY_TRAIN
from tests.servers.github_server import GitHubServer

pytestmark = pytest.mark.usefixtures("clean_env")

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
    (root / "train.py").write_text(QUALITY_TRAIN)
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


def test_pull_request_then_merge_on_github(project: Path, github: GitHubServer, tmp_path: Path,
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


def test_a_worse_change_is_refused_with_exit_1(project: Path, github: GitHubServer, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    push = github_env(github, tmp_path / "push", event="push", payload="push-with-new-branch.payload.json")
    apply_env(monkeypatch, push)
    assert ci(project) == 0
    (project / "quality.txt").write_text("0.6\n")
    apply_env(monkeypatch, github_env(github, tmp_path / "pr"))
    assert ci(project) == 1
    (comment,) = github.comments_on(2)
    assert "accuracy" in comment["body"] and github.statuses[-1]["state"] == "failure"


def test_unhandled_event_is_a_notice(project: Path, github: GitHubServer, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    apply_env(monkeypatch, github_env(github, tmp_path / "r", event="issue_comment",
                                      payload="issue_comment-created.payload.json"))
    assert ci(project) == 0
    assert "::notice::mlops-bot: nothing to do" in capsys.readouterr().out
    assert not (project / ".mlops-bot").exists()


def _push(github: GitHubServer, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = github_env(github, tmp, event="push", payload="push-with-new-branch.payload.json")
    apply_env(monkeypatch, env)
    return env


def _better_champion(project: Path, accuracy: float) -> str:
    """Another merge's model, registered and made champion behind this job's back."""
    registry = open_registry("local", project)
    run = registry.create_run(registry.get_or_create_experiment("iris-classifier").experiment_id, "other-merge")
    registry.log_batch(run.run_id, metrics={"accuracy": accuracy})
    model = project / "other-model"
    model.mkdir()
    (model / "weights.txt").write_text(str(accuracy))
    registry.upload_artifacts(run.run_id, model, "model")
    registry.update_run(run.run_id, "FINISHED")
    registry.get_or_create_registered_model("iris-classifier", "")
    version = registry.create_model_version("iris-classifier", f"{run.artifact_uri}/model", run.run_id, {}, "")
    registry.set_alias("iris-classifier", "champion", version.version)
    registry.close()
    return version.version


def test_a_push_reports_the_decision_made_again_when_the_champion_moved(
        project: Path, github: GitHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_bot.flows import promote as promote_flow_module

    register = promote_flow_module.register
    moved: list[str] = []

    def register_while_another_merge_wins(*args: object, **kwargs: object) -> object:
        moved.append(_better_champion(project, 0.95))  # between this job's compare and its promotion
        return register(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(promote_flow_module, "register", register_while_another_merge_wins)
    env = _push(github, tmp_path / "push", monkeypatch)
    assert ci(project) == 1  # judged again against the 0.95 champion: 0.8 fails
    assert moved and github.statuses[-1]["state"] == "failure"
    outputs = parse_github_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
    assert (outputs["verdict"], outputs["promoted"], outputs["champion-version"]) == ("fail", "false", moved[0])
    decision = json.loads((project / ".mlops-bot" / "decision.json").read_text())
    assert decision["verdict"] == "fail" and decision["champion"]["version"] == moved[0]
    assert "accuracy" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    registry = open_registry("local", project)
    champion = alias_holder(registry, "iris-classifier", "champion")
    assert champion is not None and champion.version == moved[0]
    registry.close()


def test_a_push_whose_deploy_fails_still_publishes_the_report(
        project: Path, github: GitHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = project / "ml.yaml"
    config.write_text(config.read_text() + "deploy:\n  - {name: prod, type: command, cmd: [sh, -c, 'exit 7']}\n")
    env = _push(github, tmp_path / "push", monkeypatch)
    assert ci(project) == 3  # the deploy target failed ...
    assert [(s["sha"], s["state"]) for s in github.statuses][-1][1] == "success"  # ... after the report went out
    outputs = parse_github_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
    assert (outputs["verdict"], outputs["promoted"], outputs["model-version"]) == ("pass", "true", "1")
    assert Path(outputs["report-path"]).is_file()
    assert "accuracy" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    registry = open_registry("local", project)
    version = registry.get_model_version("iris-classifier", "1")
    assert version.tags[tags.deploy_status("prod")] == "failed"
    registry.close()
