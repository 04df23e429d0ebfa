"""Forge.rerun_check, the `/mlops-bot rerun` of `serve`: the forge's CI runs a pull request's check again, never
the bot. GitHub re-runs the head commit's workflow run (every request and answer checked against GitHub's OpenAPI
description); GitLab creates a merge request pipeline; the local forge records the request."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mlops_bot.errors import NotFound
from mlops_bot.forges.base import CheckRunning, NoCheckRun, PermissionDenied
from mlops_bot.forges.github import GitHubForge, GitHubSettings
from mlops_bot.forges.gitlab import GitLabForge, GitLabSettings
from mlops_bot.forges.local import LocalForge
from tests.helpers.ci_env import APP_TOKEN, GITLAB_TOKEN, HEAD_SHA, MR_SHA, REPO
from tests.servers.github_server import GitHubServer
from tests.servers.gitlab_server import GitLabServer

OTHER_SHA = "0123456789abcdef" * 2 + "01234567"


def github_forge(server: GitHubServer, workflow: str = "", token: str = APP_TOKEN) -> GitHubForge:
    return GitHubForge(GitHubSettings(api_url=server.api_url, repository=REPO, workflow=workflow, budget=5,
                                      write_interval=0), token)


def test_github_reruns_the_newest_run_of_the_configured_workflow_on_that_commit(github: GitHubServer) -> None:
    check = github.add_workflow_run(HEAD_SHA, "ci.yml", conclusion="failure")
    github.add_workflow_run(OTHER_SHA, "ci.yml")  # another commit's run
    github.add_workflow_run(HEAD_SHA, "ci.yml", event="push")  # not the pull request's check
    lint = github.add_workflow_run(HEAD_SHA, "lint.yml")  # newer, but another workflow
    url = github_forge(github, workflow="ci.yml").rerun_check(2, HEAD_SHA)
    assert github.reruns == [check] and url == f"{github.origin}/{REPO}/actions/runs/{check}"
    assert (github.workflow_runs[check]["status"], github.workflow_runs[check]["run_attempt"]) == ("queued", 2)
    listed = github.calls("actions/list-workflow-runs-for-repo")[0].query
    assert (listed["head_sha"], listed["event"]) == ([HEAD_SHA], ["pull_request"])
    # without a workflow file the newest pull_request run of the commit is the one
    assert github_forge(github).rerun_check(2, HEAD_SHA).endswith(f"/actions/runs/{lint}")
    assert github.reruns == [check, lint]


def test_a_named_workflow_without_runs_falls_back_on_the_newest_run(github: GitHubServer) -> None:
    only = github.add_workflow_run(HEAD_SHA, "pr.yml")
    github_forge(github, workflow="retrain.yml").rerun_check(2, HEAD_SHA)
    assert github.reruns == [only]


def test_github_refuses_politely_while_the_run_is_in_progress(github: GitHubServer) -> None:
    done = github.add_workflow_run(HEAD_SHA, "ci.yml")
    running = github.add_workflow_run(HEAD_SHA, "ci.yml", status="in_progress")
    with pytest.raises(CheckRunning) as caught:
        github_forge(github, "ci.yml").rerun_check(2, HEAD_SHA)
    assert caught.value.url == f"{github.origin}/{REPO}/actions/runs/{running}" and "still running" in str(caught.value)
    assert github.calls("actions/re-run-workflow") == [] and github.reruns == []  # the older run is not re-run
    # started again between the list and the re-run: GitHub's 403 is the same polite answer
    github.finish_workflow_run(running)
    github.fail("actions/re-run-workflow", 403, "This workflow is already running")
    with pytest.raises(CheckRunning):
        github_forge(github, "ci.yml").rerun_check(2, HEAD_SHA)
    assert github.reruns == [] and done not in github.reruns


def test_no_run_on_the_commit_is_a_clear_not_found(github: GitHubServer) -> None:
    github.add_workflow_run(OTHER_SHA, "ci.yml")
    with pytest.raises(NoCheckRun, match=f"no check ran on {HEAD_SHA[:12]} yet; push or reopen the pull request"
                       ) as caught:
        github_forge(github, "ci.yml").rerun_check(2, HEAD_SHA)
    assert isinstance(caught.value, NotFound) and github.reruns == []


def test_a_token_without_actions_write_is_told_what_it_lacks(github: GitHubServer) -> None:
    token = "ghs_" + "Rr1" * 12
    github.add_account(token, "github-actions[bot]", kind="installation", denied=("actions/re-run-workflow",))
    github.add_workflow_run(HEAD_SHA)
    with pytest.raises(PermissionDenied, match="actions: write"):
        github_forge(github, token=token).rerun_check(2, HEAD_SHA)


def gitlab_forge(server: GitLabServer) -> GitLabForge:
    return GitLabForge(GitLabSettings(server_url=server.url, project="42", project_path="group/project"),
                       GITLAB_TOKEN)


def test_gitlab_creates_a_merge_request_pipeline(gitlab: GitLabServer) -> None:
    url = gitlab_forge(gitlab).rerun_check(7, MR_SHA)
    [pipeline] = gitlab.pipelines
    assert (pipeline["source"], pipeline["ref"], pipeline["mr"]) == ("merge_request_event",
                                                                     "refs/merge-requests/7/head", 7)
    assert url == f"{gitlab.origin}/group/project/-/pipelines/{pipeline['id']}"
    assert gitlab.calls("mrs.pipelines_create")[0].path == "/api/v4/projects/42/merge_requests/7/pipelines"
    with pytest.raises(NotFound, match="!12"):
        gitlab_forge(gitlab).rerun_check(12, MR_SHA)
    assert len(gitlab.pipelines) == 1


def test_the_local_forge_records_the_rerun(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / ".mlops-bot", io.StringIO())
    path = Path(forge.rerun_check(2, HEAD_SHA))
    forge.trigger_pipeline("main", {})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["kind"], r.get("number"), r.get("sha"), r.get("ref")) for r in lines] == [
        ("rerun", 2, HEAD_SHA, None), ("pipeline", None, None, "main")]
