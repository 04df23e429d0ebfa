"""Issue #17: a PR check costs a constant number of forge requests, whatever the number of comments on the PR.

A full report (comment + status + check run) on a PR where the bot's earlier check left its status on the
commit before this push (a `synchronize`-like event), counted from the stand-in servers' request logs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_bot.ci.context import CIContext
from mlops_bot.flows.report import Delivery, publish
from mlops_bot.forges.github import GitHubForge, GitHubSettings
from mlops_bot.forges.gitlab import GitLabForge, GitLabSettings
from mlops_bot.report.markdown import marker
from tests.helpers.ci_env import APP_TOKEN, GITLAB_TOKEN, HEAD_SHA, MR_SHA, REPO
from tests.helpers.decisions import MODEL, make_decision
from tests.servers.github_server import GitHubServer
from tests.servers.gitlab_server import GitLabServer

BUDGET = 5
PREVIOUS = "e" * 40  # the PR's head before this push, where the earlier check left its status
LABEL = f"mlops-bot/{MODEL}"
RUN_URL = "https://ci.example/runs/9001"


def github_check(github: GitHubServer, tmp_path: Path, comments: int, previous: str = PREVIOUS) -> int:
    """Requests of one report after `comments` comments by others and the bot's earlier one, last."""
    for i in range(comments):
        github.add_comment(2, f"> {marker(MODEL)}" if i % 97 == 5 else f"comment {i}", f"reviewer{i % 9}")
    own = github.add_comment(2, f"{marker(MODEL)}\nearlier report", "github-actions[bot]")
    github.add_status(previous or HEAD_SHA, LABEL, f"{github.origin}/{REPO}/pull/2#issuecomment-{own}")
    context = CIContext(platform="github", event="pull_request", flow="check", reason="", repository=REPO,
                        pr_number=2, sha=HEAD_SHA, previous_sha=previous, server_url=github.origin, run_url=RUN_URL)
    forge = GitHubForge(GitHubSettings(api_url=github.api_url, repository=REPO, number=2, write_interval=0), APP_TOKEN)
    before = len(github.seen)
    publish(make_decision(), Delivery(context, {}, tmp_path, forge=forge))
    bots = [c for c in github.comments_on(2) if c["login"] == "github-actions[bot]"]
    assert [c["id"] for c in bots] == [own] and "earlier report" not in bots[0]["body"]
    assert github.statuses[-1]["target_url"].endswith(f"#issuecomment-{own}")
    assert github.check_runs[-1]["details_url"] == RUN_URL
    assert github.calls("issues/list-comments") == []
    return len(github.seen) - before


@pytest.mark.parametrize("comments", [0, 250, 10_000])
def test_a_github_check_costs_at_most_five_requests(github: GitHubServer, tmp_path: Path, comments: int) -> None:
    assert github_check(github, tmp_path, comments) <= BUDGET
    assert [s.operation for s in github.seen] == [
        "repos/get-combined-status-for-ref", "issues/get-comment", "issues/update-comment",
        "repos/create-commit-status", "checks/create"]


def test_a_github_rerun_reads_the_heads_own_status(github: GitHubServer, tmp_path: Path) -> None:
    assert github_check(github, tmp_path, 250, previous="") <= BUDGET


def gitlab_check(gitlab: GitLabServer, tmp_path: Path, comments: int, login: str) -> int:
    gitlab.add_merge_request(7, sha=PREVIOUS)
    gitlab.push(7, MR_SHA)
    for i in range(comments):
        gitlab.add_note(7, f"> {marker(MODEL)}" if i % 97 == 5 else f"note {i}", f"dev{i % 9}", system=i % 50 == 0)
    own = gitlab.add_note(7, f"{marker(MODEL)}\nearlier report", "project_42_bot_1")
    gitlab.add_status(PREVIOUS, LABEL, f"{gitlab.url}/group/project/-/merge_requests/7#note_{own}")
    context = CIContext(platform="gitlab", event="merge_request_event", flow="check", reason="",
                        repository="group/project", project_id="42", pr_number=7, sha=MR_SHA,
                        server_url=gitlab.url, run_url=RUN_URL)
    settings = GitLabSettings(server_url=gitlab.url, project="42", project_path="group/project", mr_iid=7,
                              login=login)
    before = len(gitlab.seen)
    publish(make_decision(), Delivery(context, {}, tmp_path, forge=GitLabForge(settings, GITLAB_TOKEN)))
    bots = [n for n in gitlab.notes_on(7) if n["username"] == "project_42_bot_1"]
    assert [n["id"] for n in bots] == [own] and "earlier report" not in bots[0]["body"]
    assert gitlab.statuses[-1]["sha"] == MR_SHA and gitlab.statuses[-1]["target_url"].endswith(f"#note_{own}")
    assert gitlab.calls("notes.list") == []
    return len(gitlab.seen) - before


@pytest.mark.parametrize("comments", [0, 250, 10_000])
def test_a_gitlab_check_costs_at_most_five_requests(gitlab: GitLabServer, tmp_path: Path, comments: int) -> None:
    # The account the token writes as is known (MLOPS_BOT_LOGIN), as GitHub's GITHUB_TOKEN is github-actions[bot].
    assert gitlab_check(gitlab, tmp_path, comments, login="project_42_bot_1") <= BUDGET
    assert [s.operation for s in gitlab.seen] == [
        "mrs.versions", "statuses.list", "notes.get", "notes.update", "statuses.create"]


def test_a_gitlab_token_of_unknown_account_asks_get_user_once_more(gitlab: GitLabServer, tmp_path: Path) -> None:
    assert gitlab_check(gitlab, tmp_path, 10_000, login="") == BUDGET + 1
    assert len(gitlab.calls("user")) == 1
