"""The GitLab CI/CD component end to end: `gitlab-ci-local` (shell executor) runs a pipeline that includes
templates/mlops-bot.yml with inputs, in a real git repository holding the quickstart, against the local GitLab
server and the real mlflow server: a merge request pipeline, then a default-branch pipeline. The variables passed
play the part of GitLab's predefined ones (gitlab-ci-local says GITLAB_CI=false and knows no merge request)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlops_bot.registry import alias_holder, open_registry
from tests.e2e.runners import Run, run_gitlab_ci_local
from tests.helpers.e2e import ROOT, Repo, git, make_repo, spying_prepare
from tests.servers.gitlab_server import GitLabServer
from tests.servers.mlflow_server import MlflowServer

pytestmark = [pytest.mark.e2e, pytest.mark.mlflow]

PROJECT_PATH, PROJECT_ID = "group/project", 42
TOKEN = "glpat-" + "Ee2Ee2" * 4
READ_ONLY = "glpat-" + "Ro9Ro9" * 4
MR = 1
PIPELINE = """\
stages: [test]
include:
  - local: templates/mlops-bot.yml
    inputs:
      tracking-uri: {uri}
{extra}"""

Pipeline = Callable[..., Run]


@pytest.fixture(scope="module")
def gitlab() -> Iterator[GitLabServer]:
    server = GitLabServer(PROJECT_PATH, PROJECT_ID).start()
    server.add_account(TOKEN, "mlops-bot")
    server.add_account(READ_ONLY, "reporter", write=False)
    yield server
    server.stop()
    assert server.violations == [], "the bot broke the GitLab API's rules"


def make_project(root: Path, tracking_uri: str, inputs: str = "", drop: tuple[str, ...] = (),
                 spy: Path | None = None) -> Repo:
    files = {".gitlab-ci.yml": PIPELINE.format(uri=tracking_uri, extra=inputs),
             "templates/mlops-bot.yml": (ROOT / "templates" / "mlops-bot.yml").read_text(),
             **({"prepare.py": spying_prepare(spy)} if spy else {})}
    return make_repo(root / "project", "main", f"git@gitlab.example.com:{PROJECT_PATH}.git", files, drop)


@pytest.fixture(scope="module")
def spy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the merge request's training code records the environment it was given (outside the repository)."""
    return tmp_path_factory.mktemp("spy") / "environment.json"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, mlflow_server: MlflowServer, spy: Path) -> Repo:
    return make_project(tmp_path_factory.mktemp("gitlab-e2e"), mlflow_server.uri, spy=spy)


@pytest.fixture(scope="module")
def pipeline(gitlab: GitLabServer, pip_offline: dict[str, str]) -> Pipeline:
    """`pipeline(repo, merge_request=False, tag="", token=TOKEN, source="")`: a merge request pipeline of MR 1, a
    tag's pipeline, or a pipeline of the default branch (a push's, or `source`'s, e.g. schedule)."""

    def run(repo: Repo, merge_request: bool = False, tag: str = "", token: str = TOKEN, source: str = "") -> Run:
        variables = {"GITLAB_CI": "true", "CI_SERVER_URL": gitlab.url, "CI_PROJECT_ID": str(PROJECT_ID),
                     "GITLAB_TOKEN": token, "MLOPS_BOT_RETRY_SECONDS": "5", **pip_offline}
        if source:  # e.g. a scheduled pipeline of the default branch
            variables.update(CI_PIPELINE_SOURCE=source)
        if merge_request:
            variables.update(CI_PIPELINE_SOURCE="merge_request_event", CI_MERGE_REQUEST_IID=str(MR),
                             CI_MERGE_REQUEST_PROJECT_ID=str(PROJECT_ID),
                             CI_MERGE_REQUEST_SOURCE_PROJECT_ID=str(PROJECT_ID),
                             CI_MERGE_REQUEST_SOURCE_BRANCH_NAME="feature", CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main",
                             CI_MERGE_REQUEST_SOURCE_BRANCH_SHA=repo.head)
        if tag:  # a tag's pipeline knows no branch
            variables.update(CI_COMMIT_TAG=tag, CI_COMMIT_REF_NAME=tag)
        # What the previous pipeline left (the shell executor runs in the repository itself).
        shutil.rmtree(repo.path / ".mlops-bot", ignore_errors=True)
        for name in ("mlops-bot.env", "metrics.txt"):
            (repo.path / name).unlink(missing_ok=True)
        return run_gitlab_ci_local(repo.path, variables, unset=("CI_COMMIT_BRANCH",) if tag else ())

    return run


def dotenv(repo: Repo) -> dict[str, str]:
    lines = (repo.path / "mlops-bot.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


@pytest.fixture(scope="module")
def mr_pipeline(project: Repo, gitlab: GitLabServer, pipeline: Pipeline) -> tuple[Run, dict[str, str], str]:
    gitlab.add_merge_request(MR, "feature", "main", sha=project.head)
    run = pipeline(project, merge_request=True)
    metrics = (project.path / "metrics.txt").read_text() if (project.path / "metrics.txt").exists() else ""
    return run, dotenv(project) if (project.path / "mlops-bot.env").exists() else {}, metrics


def test_merge_request_pipeline_notes_sets_status_and_writes_reports(mr_pipeline: tuple[Run, dict[str, str], str],
                                                                     project: Repo, gitlab: GitLabServer) -> None:
    run, values, metrics = mr_pipeline
    assert run.returncode == 0 and "PASS  mlops-bot-mr-check" in run.output, run.explain()
    assert "mlops-bot-promote" not in run.output and "mlops-bot-gate" not in run.output
    assert "could not be found" not in run.output, "gitlab-ci-local missed a report or an artifact"
    notes = gitlab.notes_on(MR)
    assert len(notes) == 1 and project.model in notes[0]["body"] and notes[0]["username"] == "mlops-bot"
    statuses = [s for s in gitlab.statuses if s["sha"] == project.head]
    assert [(s["status"], s["name"]) for s in statuses] == [("success", f"mlops-bot/{project.model}")]
    assert values["MLOPS_BOT_VERDICT"] == "pass" and len(values["MLOPS_BOT_RUN_ID"]) >= 16, values
    assert values["MLOPS_BOT_REPORT_PATH"].endswith("/.mlops-bot/report.md")
    assert re.search(rf"^{project.model.replace('-', '_')}_accuracy 0\.\d+$", metrics, flags=re.M), metrics
    assert metrics.endswith("# EOF\n")


@pytest.fixture(scope="module")
def push_pipeline(mr_pipeline: tuple[Run, dict[str, str], str], project: Repo, pipeline: Pipeline
                  ) -> tuple[Run, dict[str, str]]:
    run = pipeline(project)
    return run, dotenv(project) if (project.path / "mlops-bot.env").exists() else {}


def test_the_merge_requests_training_code_cannot_read_the_token(mr_pipeline: tuple[Run, dict[str, str], str],
                                                               spy: Path) -> None:
    seen = json.loads(spy.read_text())  # GITLAB_TOKEN is a CI/CD variable of every job; the steps are the MR's code
    assert seen["MLFLOW_TRACKING_URI"]  # it ran under the bot, which says where to log
    assert not [name for name, value in seen.items() if TOKEN in value]
    assert not {"GITLAB_TOKEN", "CI_JOB_TOKEN"} & set(seen)


def test_default_branch_pipeline_promotes(mr_pipeline: tuple[Run, dict[str, str], str], project: Repo,
                                          push_pipeline: tuple[Run, dict[str, str]], mlflow_server: MlflowServer
                                          ) -> None:
    run, values = push_pipeline
    assert run.returncode == 0 and "PASS  mlops-bot-promote" in run.output, run.explain()
    assert "mlops-bot-mr-check" not in run.output
    assert values["MLOPS_BOT_PROMOTED"] == "true", values
    registry = open_registry(mlflow_server.uri, project.path)
    try:
        champion = alias_holder(registry, project.model, "champion")
    finally:
        registry.close()
    assert champion is not None and champion.version == values["MLOPS_BOT_MODEL_VERSION"]
    assert champion.run_id == mr_pipeline[1]["MLOPS_BOT_RUN_ID"], "the merge should promote the MR's run"


def test_tag_pipeline_gates_on_the_champion(push_pipeline: tuple[Run, dict[str, str]], project: Repo,
                                            pipeline: Pipeline) -> None:
    run = pipeline(project, tag="v1.0.0")
    assert run.returncode == 0 and "PASS  mlops-bot-gate" in run.output, run.explain()
    assert "mlops-bot-promote" not in run.output
    values = dotenv(project)
    assert values["MLOPS_BOT_GATE"] == "open", values
    assert values["MLOPS_BOT_MODEL_VERSION"] == push_pipeline[1]["MLOPS_BOT_MODEL_VERSION"]


def test_token_without_rights_degrades_with_a_warning(mr_pipeline: tuple[Run, dict[str, str], str], project: Repo,
                                                       gitlab: GitLabServer, pipeline: Pipeline) -> None:
    notes = len(gitlab.notes_on(MR))
    run = pipeline(project, merge_request=True, token=READ_ONLY)
    assert "warning:" in run.output and "mlops-bot report" in run.output, run.explain()
    assert len(gitlab.notes_on(MR)) == notes
    assert dotenv(project).get("MLOPS_BOT_VERDICT"), "the outputs are written before anything is posted"


def test_missing_ml_yaml_fails_the_job_saying_which_input_to_set(tmp_path: Path, mlflow_server: MlflowServer,
                                                                 pipeline: Pipeline) -> None:
    bare = make_project(tmp_path, mlflow_server.uri, drop=("ml.yaml",))
    run = pipeline(bare, merge_request=True)
    assert "FAIL  mlops-bot-mr-check" in run.output, run.explain()
    assert "ml.yaml does not exist; set the config input" in run.output, run.explain()


def test_misspelt_input_falls_back_and_says_which_input_to_set(tmp_path: Path, mlflow_server: MlflowServer,
                                                               pipeline: Pipeline) -> None:
    # GitLab itself refuses an unknown input when it creates the pipeline; gitlab-ci-local ignores it, so the job
    # runs with the default config and its message must still point at the right input.
    moved = make_project(tmp_path, mlflow_server.uri, inputs="      confg: ml/ml.yaml\n", drop=("ml.yaml",))
    run = pipeline(moved, merge_request=True)
    assert "FAIL  mlops-bot-mr-check" in run.output, run.explain()
    assert "set the config input" in run.output, run.explain()


def test_scheduled_pipeline_checks_drift_and_retrains_once_per_finding(push_pipeline: tuple[Run, dict[str, str]],
                                                                       project: Repo, gitlab: GitLabServer,
                                                                       pipeline: Pipeline) -> None:
    assert push_pipeline[0].returncode == 0, push_pipeline[0].explain()  # the champion, trained on build/train.csv
    ci = project.path / ".gitlab-ci.yml"
    ci.write_text(ci.read_text().replace("      tracking-uri:", "      drift-schedule: true\n      tracking-uri:"))
    git(project.path, "commit", "--quiet", "--all", "--message", "check drift in scheduled pipelines")
    fresh = pipeline(project, source="schedule")
    assert fresh.returncode == 0 and "PASS  mlops-bot-drift" in fresh.output, fresh.explain()
    assert "mlops-bot-promote" not in fresh.output, "a scheduled pipeline is the drift check's, not a promotion"
    assert "no drift: 0 of 64 feature(s) drifted" in fresh.output, fresh.explain()
    config = project.path / "ml.yaml"
    config.write_text(config.read_text().replace("current: monitor/fresh.csv", "current: monitor/shifted.csv"))
    git(project.path, "commit", "--quiet", "--all", "--message", "current data: the new scanner")
    started = len(gitlab.pipelines)
    drifted = pipeline(project, source="schedule")
    assert "FAIL  mlops-bot-drift" in drifted.output and "24 of 64 feature(s) drifted" in drifted.output, \
        drifted.explain()
    assert [p["ref"] for p in gitlab.pipelines[started:]] == ["main"], drifted.explain()  # on: drift.detected
    assert "Drift detected" in (project.path / ".mlops-bot" / "drift.md").read_text()  # kept as the artifact
    again = pipeline(project, source="schedule")
    assert "started a retraining already" in again.output, again.explain()
    assert len(gitlab.pipelines) == started + 1  # the same finding: no second retrain
