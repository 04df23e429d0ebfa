"""What a CI runner gives a step: the environment of a GitHub Actions or GitLab CI job built from the real event
payloads (tests/fixtures/github-events), the tokens in it, and $GITHUB_OUTPUT read back as the runner reads it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.servers.github_server import GitHubServer
    from tests.servers.gitlab_server import GitLabServer

EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "github-events"
REPO = "Codertocat/Hello-World"  # the repository of the fixture payloads
HEAD_SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # pull_request.head.sha in the pull_request payloads
MERGE_SHA = "f" * 40  # GITHUB_SHA on a pull_request event: GitHub's test merge commit, never reported on
APP_TOKEN = "ghs_" + "Zq8Xw2" * 6  # an installation token, as a workflow's GITHUB_TOKEN is
USER_TOKEN = "ghp_" + "Uv7Ty4" * 6
GITLAB_TOKEN = "glpat-" + "Kd9Lm3" * 4
MR_SHA = "b" * 40
# Variables of the machine running the tests that must not leak into them (see `clean_env`).
CI_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "MLOPS_BOT_", "RUNNER_")
CI_TOKENS = ("GH_TOKEN", "GITHUB_TOKEN")


def apply_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


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


def parse_github_outputs(text: str) -> dict[str, str]:
    """What the runner reads back from $GITHUB_OUTPUT."""
    values: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            values[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
    return values
