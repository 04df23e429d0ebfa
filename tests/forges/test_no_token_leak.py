"""No token appears in anything the bot writes: stdout, stderr, the report, summary, outputs, dotenv, metrics.

Each scenario runs the real command in a subprocess, so every byte it prints is captured, whatever prints it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.helpers.ci_env import GITLAB_TOKEN, USER_TOKEN, github_env, gitlab_env
from tests.helpers.decisions import make_decision, write_decision
from tests.servers.github_server import SECONDARY_LIMIT, GitHubServer
from tests.servers.gitlab_server import GitLabServer

ROOT = Path(__file__).resolve().parents[2]


def run_bot(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_", "MLOPS_BOT_"))}
    return subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(project), "report", "--decision",
                           "decision.json"], env={**base, **env, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=120, check=False)


def assert_nowhere(token: str, result: subprocess.CompletedProcess[str], tree: Path) -> None:
    assert token not in result.stdout and token not in result.stderr
    for path in tree.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), f"the token leaked into {path}"


@pytest.mark.parametrize(("scenario", "code"), [("posted", 1), ("read-only", 1), ("expired", 3), ("rejected", 3),
                                                ("rate limited", 3)])
def test_no_github_token_in_any_output(github: GitHubServer, tmp_path: Path, scenario: str, code: int) -> None:
    github.add_account(USER_TOKEN, "octobot", write=scenario != "read-only", expired=scenario == "expired")
    github.add_comment(2, "<!-- mlops-bot:report model=iris-classifier --> spoofed", "mallory")  # forces GET /user
    if scenario == "rejected":
        github.fail("issues/create-comment", 422, body={"message": "Validation Failed", "documentation_url": "d",
                                                        "errors": [{"code": "invalid", "field": "body"}]})
    if scenario == "rate limited":
        github.fail("*", 429, SECONDARY_LIMIT, {"Retry-After": "60"}, times=3)
    project = tmp_path / "project"
    write_decision(project, make_decision(passed=False))
    env = {**github_env(github, tmp_path / "runner", token=USER_TOKEN), "MLOPS_BOT_RETRY_SECONDS": "1"}
    result = run_bot(project, env)
    assert result.returncode == code, result.stderr
    assert (project / ".mlops-bot" / "report.md").is_file()
    assert_nowhere(USER_TOKEN, result, tmp_path)


@pytest.mark.parametrize(("scenario", "code"), [("posted", 0), ("read-only", 0)])
def test_no_gitlab_token_in_any_output(gitlab: GitLabServer, tmp_path: Path, scenario: str, code: int) -> None:
    token = GITLAB_TOKEN if scenario == "posted" else "glpat-readonly-0123456789"
    gitlab.add_account(token, "reporter", write=False) if scenario == "read-only" else None
    project = tmp_path / "project"
    write_decision(project, make_decision(passed=True))
    result = run_bot(project, gitlab_env(gitlab, token=token))
    assert result.returncode == code, result.stderr
    assert ("warning" in result.stderr) == (scenario == "read-only")
    assert (project / "mlops-bot.env").is_file()
    assert_nowhere(token, result, tmp_path)


TRACKING_ML_YAML = """\
version: 1
model: {name: iris-classifier, artifact: build/model}
tracking: {uri: "${MLFLOW_TRACKING_URI}", experiment: iris}
pipeline:
  train: {cmd: [python, train.py], outs: [build/model], metrics: build/metrics.json}
compare:
  criteria:
    - {metric: accuracy, threshold: 0.9}
"""


def test_no_tracking_password_or_query_token_in_any_output(github: GitHubServer, tmp_path: Path) -> None:
    """The follow-up job's `report`: run links come from the tracking URI, never its credentials or query."""
    github.add_account(USER_TOKEN, "octobot")
    project = tmp_path / "project"
    decision = make_decision(passed=True)
    challenger = replace(decision.challenger, lineage={**decision.challenger.lineage, "experiment": "7"})
    write_decision(project, replace(decision, challenger=challenger))
    (project / "ml.yaml").write_text(TRACKING_ML_YAML)
    uri = "https://mlflow-user:CANARYPASSWORD@mlflow.example/?token=CANARYQUERY#CANARYFRAGMENT"
    env = {**github_env(github, tmp_path / "runner", token=USER_TOKEN), "MLFLOW_TRACKING_URI": uri}
    result = run_bot(project, env)
    assert result.returncode == 0, result.stderr
    (comment,) = github.comments_on(2)
    assert f"](https://mlflow.example/#/experiments/7/runs/{'r' * 32})" in comment["body"]
    for canary in ("CANARYPASSWORD", "mlflow-user", "CANARYQUERY", "CANARYFRAGMENT"):
        assert canary not in json.dumps([(seen.path, seen.query, seen.body) for seen in github.seen])
        assert_nowhere(canary, result, tmp_path)
