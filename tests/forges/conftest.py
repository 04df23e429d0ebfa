"""Fixtures for the forge tests: the local GitHub and GitLab servers (no contract violation may be left at
teardown), CI environments built from the real event payloads, and Decisions to report."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_bot.decide.decision import Challenger, Champion, CriterionResult, Decision
from tests.servers.github_server import GitHubServer
from tests.servers.gitlab_server import GitLabServer

EVENTS = Path(__file__).resolve().parent.parent / "fixtures" / "github-events"
REPO = "Codertocat/Hello-World"  # the repository of the fixture payloads
HEAD_SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # pull_request.head.sha in the pull_request payloads
MERGE_SHA = "f" * 40  # GITHUB_SHA on a pull_request event: GitHub's test merge commit, never reported on
APP_TOKEN = "ghs_" + "Zq8Xw2" * 6  # an installation token, as a workflow's GITHUB_TOKEN is
USER_TOKEN = "ghp_" + "Uv7Ty4" * 6
GITLAB_TOKEN = "glpat-" + "Kd9Lm3" * 4
MR_SHA = "b" * 40
MODEL = "iris-classifier"
_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "MLOPS_BOT_", "RUNNER_")


def make_decision(passed: bool = True, model: str = MODEL, accuracy: float = 0.95) -> Decision:
    criterion = CriterionResult(
        metric="accuracy", greater_is_better=True, passed=passed, reason="0.95 >= 0.9" if passed else "below 0.9",
        criterion=">= 0.9", challenger=accuracy, champion=0.93, baseline="logged", change=accuracy - 0.93,
        change_pct=100 * (accuracy - 0.93) / 0.93)
    return Decision(
        model=model, verdict="pass" if passed else "fail", bootstrap=False,
        summary="all 1 criteria passed" if passed else "1 of 1 criteria failed",
        challenger=Challenger(run_id="r" * 32, metrics={"accuracy": accuracy, "latency_ms": 12.5}, source="run",
                              lineage={"commit": HEAD_SHA}),
        champion=Champion(version="3", run_id="c" * 32, metrics={"accuracy": 0.93}, source=f"models:/{model}@champion"),
        criteria=(criterion,), created_at="2024-05-01T12:00:00Z")


def write_decision(directory: Path, decision: Decision, name: str = "decision.json") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(decision.to_dict()), encoding="utf-8")
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CI variable of the machine running the tests leaks into them."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES) or name in ("GH_TOKEN", "GITHUB_TOKEN"):
            monkeypatch.delenv(name, raising=False)


def apply_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def github() -> Iterator[GitHubServer]:
    server = GitHubServer(REPO).start()
    server.add_account(APP_TOKEN, "github-actions[bot]", kind="installation")
    server.add_pull(2, HEAD_SHA)
    yield server
    server.stop()
    assert server.violations == [], "the bot broke GitHub's contract"


@pytest.fixture
def gitlab() -> Iterator[GitLabServer]:
    server = GitLabServer("group/project", 42).start()
    server.add_account(GITLAB_TOKEN, "project_42_bot_1")
    server.add_merge_request(7)
    yield server
    server.stop()
    assert server.violations == [], "the bot called GitLab in a way its docs do not describe"


def github_env(server: GitHubServer | None, tmp: Path, event: str = "pull_request",
               payload: str = "pull_request-opened.payload.json", token: str = APP_TOKEN) -> dict[str, str]:
    """The variables a GitHub Actions runner sets for a step, with files for the summary and outputs."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(EVENTS / payload),
        "GITHUB_REPOSITORY": REPO, "GITHUB_SERVER_URL": "https://github.example", "GITHUB_RUN_ID": "9001",
        "GITHUB_SHA": MERGE_SHA, "GITHUB_REF": "refs/pull/2/merge", "GITHUB_ACTOR": "Codertocat",
        "GITHUB_WORKFLOW_REF": f"{REPO}/.github/workflows/ml.yml@refs/pull/2/merge",
        "GITHUB_STEP_SUMMARY": str(tmp / "step_summary.md"), "GITHUB_OUTPUT": str(tmp / "output.txt"),
        "GITHUB_API_URL": server.api_url if server else "https://api.github.com",
        "MLOPS_BOT_WRITE_INTERVAL": "0",
    }
    if token:
        env["GITHUB_TOKEN"] = token
    return env


def gitlab_env(server: GitLabServer | None, token: str = GITLAB_TOKEN, merged_results: bool = False
               ) -> dict[str, str]:
    url = server.url if server else "https://gitlab.example"
    env = {
        "GITLAB_CI": "true", "CI": "true", "CI_PIPELINE_SOURCE": "merge_request_event", "CI_SERVER_URL": url,
        "CI_API_V4_URL": f"{url}/api/v4", "CI_PROJECT_ID": "42", "CI_PROJECT_PATH": "group/project",
        "CI_PIPELINE_URL": f"{url}/group/project/-/pipelines/77", "CI_COMMIT_SHA": MR_SHA,
        "CI_COMMIT_REF_NAME": "feature", "CI_DEFAULT_BRANCH": "main", "CI_MERGE_REQUEST_IID": "7",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_MERGE_REQUEST_PROJECT_ID": "42", "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "42",
        "GITLAB_USER_LOGIN": "alice",
    }
    if merged_results:
        env.update(CI_COMMIT_SHA="d" * 40, CI_MERGE_REQUEST_SOURCE_BRANCH_SHA=MR_SHA)
    if token:
        env["GITLAB_TOKEN"] = token
    return env
