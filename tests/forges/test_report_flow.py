"""`mlops-bot report` end to end: the local GitHub/GitLab servers, real event payloads, real files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mlops_bot import cli
from tests.helpers.ci_env import (
    HEAD_SHA,
    MERGE_SHA,
    MR_SHA,
    REPO,
    apply_env,
    github_env,
    gitlab_env,
    parse_github_outputs,
)
from tests.helpers.decisions import MODEL, make_decision, write_decision
from tests.servers.github_server import GitHubServer
from tests.servers.gitlab_server import GitLabServer

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_decision(tmp_path / "project", make_decision(passed=True))
    return tmp_path / "project"


def report(project: Path, *args: str) -> int:
    return cli.main(["-C", str(project), "report", "--decision", "decision.json", *args])


def on_github(monkeypatch: pytest.MonkeyPatch, server: GitHubServer | None, tmp_path: Path,
              **overrides: str) -> dict[str, str]:
    env = github_env(server, tmp_path / "runner")
    env.update(overrides)
    apply_env(monkeypatch, env)
    return env


def test_a_pull_request_check_posts_everything_on_the_head_commit(
        github: GitHubServer, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = on_github(monkeypatch, github, tmp_path)
    assert report(project) == 0
    (comment,) = github.comments_on(2)
    assert comment["login"] == "github-actions[bot]" and f"model={MODEL}" in comment["body"]
    (status,) = github.statuses
    assert (status["sha"], status["state"], status["context"]) == (HEAD_SHA, "success", f"mlops-bot/{MODEL}")
    assert github.statuses_for(MERGE_SHA) == []
    assert (project / ".mlops-bot" / "report.md").read_text() == comment["body"]
    assert comment["body"] in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    outputs = parse_github_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
    assert outputs["verdict"] == "pass" and outputs["comment-url"].endswith(f"#issuecomment-{comment['id']}")
    # the status remembers the comment for the next check; the check run links the CI run
    assert status["target_url"] == outputs["comment-url"]
    (check_run,) = github.check_runs
    assert check_run["details_url"] == f"https://github.example/{REPO}/actions/runs/9001"
    assert "::warning::" not in capsys.readouterr().out


def test_rerunning_the_report_edits_the_same_comment(github: GitHubServer, project: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    on_github(monkeypatch, github, tmp_path)
    assert report(project) == 0
    assert report(project) == 0
    write_decision(project, make_decision(passed=False, accuracy=0.5))
    assert report(project) == 1
    (comment,) = github.comments_on(2)
    assert "Fail" in comment["body"] and len(github.calls("issues/create-comment")) == 1
    assert len(github.calls("issues/update-comment")) == 1  # the identical second run changed nothing
    assert [(s["sha"], s["state"]) for s in github.statuses] == [(HEAD_SHA, "success")] * 2 + [(HEAD_SHA, "failure")]
    # the re-runs found the comment through the head commit's own status, without listing the comments
    assert len(github.calls("issues/list-comments")) == 1 and len(github.calls("issues/get-comment")) == 2


@pytest.mark.parametrize("passed", [True, False])
def test_a_read_only_token_degrades_to_summary_and_file(
        github: GitHubServer, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], passed: bool) -> None:
    github.accounts[next(iter(github.accounts))].write = False
    write_decision(project, make_decision(passed=passed))
    env = on_github(monkeypatch, github, tmp_path)
    assert report(project, "--json") == (0 if passed else 1)
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["status"] == "denied" and document["comment"] is None and "HTTP 403" in document["warning"]
    assert captured.err.count("::warning::") == 1 and captured.err.count("mlops-bot: warning:") == 1
    assert "workflow_run" in captured.err
    assert ("Pass" if passed else "Fail") in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert (project / ".mlops-bot" / "report.md").is_file()
    assert github.comments_on(2) == [] and github.statuses == []


@pytest.mark.parametrize(("scenario", "code", "message"), [
    ("no token", 2, "GitHub: no token; pass one to the step"),
    ("expired token", 3, "HTTP 401 .* the token is expired, revoked or wrong"),
    ("deleted pull request", 3, "HTTP 404 .*could not list the comments of #2.*does not exist"),
    ("rejected body", 3, "HTTP 422 .*could not create a comment on #2: Validation Failed"),
    ("rate limit never lifts", 3, "HTTP 403 .*rate limit did not lift"),
])
def test_failures_are_clear_and_the_report_is_written_first(
        github: GitHubServer, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], scenario: str, code: int, message: str) -> None:
    env = on_github(monkeypatch, github, tmp_path, MLOPS_BOT_RETRY_SECONDS="1")
    if scenario == "no token":
        monkeypatch.delenv("GITHUB_TOKEN")
    elif scenario == "expired token":
        github.accounts[env["GITHUB_TOKEN"]].expired = True
    elif scenario == "deleted pull request":
        del github.pulls[2]
    elif scenario == "rejected body":
        github.fail("issues/create-comment", 422, body={"message": "Validation Failed", "documentation_url": "d",
                                                        "errors": [{"code": "custom", "field": "body"}]})
    else:
        github.fail("*", 403, "You have exceeded a secondary rate limit.", {"Retry-After": "60"}, times=5)
    assert report(project) == code
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if line.startswith("mlops-bot: error:")]) == 1
    assert re.search(message, err), err
    assert (project / ".mlops-bot" / "report.md").is_file()
    assert f"model={MODEL}" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    if scenario == "deleted pull request":
        assert github.statuses_for(HEAD_SHA)  # the status still went to the commit


def test_a_follow_up_workflow_run_job_posts_for_the_fork(github: GitHubServer, project: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    event = tmp_path / "workflow_run.json"
    event.write_text(json.dumps({"workflow_run": {"head_sha": HEAD_SHA, "pull_requests": []},
                                 "repository": {"full_name": REPO, "default_branch": "master"}}))
    on_github(monkeypatch, github, tmp_path, GITHUB_EVENT_NAME="workflow_run", GITHUB_EVENT_PATH=str(event))
    assert report(project, "--pr", "2") == 0
    assert len(github.comments_on(2)) == 1 and github.statuses_for(HEAD_SHA)


def test_a_follow_up_job_posts_nothing_when_the_pull_request_moved_on(
        github: GitHubServer, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    event = tmp_path / "workflow_run.json"
    event.write_text(json.dumps({"workflow_run": {"head_sha": "a" * 40, "pull_requests": []}}))
    env = on_github(monkeypatch, github, tmp_path, GITHUB_EVENT_NAME="workflow_run", GITHUB_EVENT_PATH=str(event))
    assert report(project, "--pr", "2") == 2
    assert "pull request #2 is at ec26c3e57ca3, not at aaaaaaaaaaaa" in capsys.readouterr().err
    assert github.comments_on(2) == [] and github.statuses == []
    assert Path(env["GITHUB_STEP_SUMMARY"]).is_file()


def test_no_post_writes_files_only(github: GitHubServer, project: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    on_github(monkeypatch, github, tmp_path)
    assert report(project, "--no-post", "--output", "out/report.md") == 0
    assert (project / "out" / "report.md").is_file() and github.seen == []


def test_gitlab_merge_request_check(gitlab: GitLabServer, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_decision(project, make_decision(passed=False, accuracy=0.5))
    apply_env(monkeypatch, gitlab_env(gitlab, merged_results=True))
    assert report(project) == 1
    (note,) = gitlab.notes_on(7)
    assert note["username"] == "project_42_bot_1" and "Fail" in note["body"]
    assert [(s["sha"], s["status"]) for s in gitlab.statuses] == [(MR_SHA, "failed")]
    dotenv = (project / "mlops-bot.env").read_text()
    assert "MLOPS_BOT_VERDICT=fail\n" in dotenv and "MLOPS_BOT_COMMENT_URL=" in dotenv
    assert "iris_classifier_accuracy 0.5\n" in (project / "metrics.txt").read_text()
    assert gitlab.statuses[0]["target_url"].endswith(f"/group/project/-/merge_requests/7#note_{note['id']}")
    assert report(project) == 1 and len(gitlab.notes_on(7)) == 1
    assert len(gitlab.calls("notes.list")) == 1 and len(gitlab.calls("notes.get")) == 1  # the re-run: no scan


def test_local_mode_prints_the_report_and_keeps_it_in_files(project: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert report(project) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"<!-- mlops-bot:report model={MODEL} -->") and "Pass" in out
    assert (project / ".mlops-bot" / "comment.md").read_text() == out
    assert (project / ".mlops-bot" / "report.md").read_text() == out


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such decision file"),
    ('{"model": ', r"decision.json:1:\d+: the decision file is not valid JSON"),
    ('{"model": "x"}', "not a Decision document"),
])
def test_a_bad_decision_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "decision.json").write_text(content)
    assert report(tmp_path) == 2
    assert re.search(message, capsys.readouterr().err)
