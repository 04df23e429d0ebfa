"""The GitHub adapter's governance reads against the local GitHub server: roles, discussions, reviews, deployment
approvals of a workflow run, and replies; every request and answer checked against GitHub's OpenAPI description."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlops_bot.errors import NotFound
from mlops_bot.forges.base import COMMENT_LIMIT, Approver, Discussion, PermissionDenied, WrittenComment
from mlops_bot.forges.github import GitHubForge, GitHubSettings
from tests.helpers.ci_env import APP_TOKEN, HEAD_SHA, REPO
from tests.servers.github_server import GitHubServer

OTHER_SHA = "0123456789abcdef" * 2 + "01234567"


def forge(server: GitHubServer, token: str = APP_TOKEN) -> GitHubForge:
    return GitHubForge(GitHubSettings(api_url=server.api_url, repository=REPO, number=2, budget=5,
                                      write_interval=0), token)


def test_roles_come_from_role_name_or_the_base_permission(github: GitHubServer) -> None:
    for login, role in [("ann", "read"), ("tim", "triage"), ("wes", "write"), ("max", "maintain"), ("ada", "admin")]:
        github.add_collaborator(login, role)
    github.add_collaborator("cus", "release-manager", permission="write")  # a custom role
    github.add_user("pat")  # has an account, is no collaborator
    gh = forge(github)
    roles = {login: gh.role_of(login) for login in ("ann", "tim", "wes", "max", "ada", "cus", "pat", "ghost", "MAX")}
    assert roles == {"ann": "read", "tim": "triage", "wes": "write", "max": "maintain", "ada": "admin",
                     "cus": "write", "pat": "read", "ghost": "none", "MAX": "maintain"}
    github.private = True  # nobody outside reads a private repository
    assert gh.role_of("pat") == "none"
    assert [s.status for s in github.calls("repos/get-collaborator-permission-level")][-3:] == [404, 200, 200]


def test_a_pull_request_its_fork_and_its_states(github: GitHubServer) -> None:
    github.add_pull(5, OTHER_SHA, head_ref="patch-1", author="mallory", head_repo="mallory/Hello-World")
    github.add_pull(6, OTHER_SHA, author="alice")
    github.close_pull(6)
    github.add_pull(8, OTHER_SHA, author="alice")
    github.close_pull(8, merged=True)
    gh = forge(github)
    assert gh.discussion(2) == Discussion(2, True, "open", False, HEAD_SHA, "octocat",
                                          f"{github.origin}/{REPO}/pull/2", head_ref="changes")
    fork = gh.discussion(5)
    assert (fork.from_fork, fork.author, fork.head_sha, fork.state) == (True, "mallory", OTHER_SHA, "open")
    assert fork.head_ref == "patch-1"  # the branch in the fork
    assert gh.discussion(6).state == "closed" and gh.discussion(8).state == "merged"
    assert not gh.discussion(8).from_fork


def test_an_issue_is_a_discussion_without_a_head_and_an_unknown_number_is_not_found(github: GitHubServer) -> None:
    github.add_issue(3, author="bob", state="closed")
    assert forge(github).discussion(3) == Discussion(3, False, "closed", False, "", "bob",
                                                     f"{github.origin}/{REPO}/issues/3")
    assert github.calls("pulls/get") == []  # an issue needs no second request
    with pytest.raises(NotFound, match="#404"):
        forge(github).discussion(404)


def test_each_reviewers_latest_decision_stands(github: GitHubServer) -> None:
    github.add_review(2, "alice", "APPROVED")
    github.add_review(2, "bob", "APPROVED", commit=OTHER_SHA)
    github.add_review(2, "bob", "CHANGES_REQUESTED")  # withdraws bob's approval
    github.add_review(2, "carol", "APPROVED")
    github.add_review(2, "carol", "COMMENTED")  # a comment leaves it standing
    dave = github.add_review(2, "dave", "APPROVED")
    github.dismiss_review(2, dave)  # a maintainer dismissed it
    github.add_review(2, "erin", "CHANGES_REQUESTED")
    github.add_review(2, "erin", "APPROVED", commit=OTHER_SHA)  # changed her mind
    github.add_review(2, "frank", "PENDING")  # a draft only frank sees
    approvers = forge(github).approvers(2)
    assert sorted(approvers, key=lambda a: a.login) == [
        Approver("alice", f"{github.origin}/{REPO}/pull/2#pullrequestreview-80001", HEAD_SHA),
        Approver("carol", f"{github.origin}/{REPO}/pull/2#pullrequestreview-80004", HEAD_SHA),
        Approver("erin", f"{github.origin}/{REPO}/pull/2#pullrequestreview-80008", OTHER_SHA)]


def test_reviews_are_read_on_every_page(github: GitHubServer) -> None:
    github.add_review(2, "alice", "APPROVED")
    for i in range(150):
        github.add_review(2, f"user{i}", "COMMENTED")
    github.add_review(2, "alice", "CHANGES_REQUESTED")  # on the second page
    github.add_review(2, "zed", "APPROVED")
    assert [a.login for a in forge(github).approvers(2)] == ["zed"]
    assert len(github.calls("pulls/list-reviews")) == 2
    with pytest.raises(NotFound):
        forge(github).approvers(99)


def test_run_approvals_count_for_the_named_environment_only(github: GitHubServer) -> None:
    github.add_run_approval(9001, "max", ["staging"])
    github.add_run_approval(9001, "ada", ["production", "staging"])
    github.add_run_approval(9001, "rex", ["production"], state="rejected")
    github.add_run(9002)
    gh = forge(github)
    run_url = f"{github.origin}/{REPO}/actions/runs/9001"
    assert gh.environment_approvers("9001", "production") == [Approver("ada", run_url)]
    assert [a.login for a in gh.environment_approvers("9001", "staging")] == ["max", "ada"]
    assert gh.environment_approvers("9002", "production") == []
    assert gh.environment_approvers("", "production") == []  # not in a workflow run: nothing asked
    with pytest.raises(NotFound):
        gh.environment_approvers("9003", "production")


def test_a_token_without_actions_read_is_denied(github: GitHubServer) -> None:
    token = "ghs_" + "Nn1" * 12
    github.add_account(token, "github-actions[bot]", kind="installation", denied=("actions/get-reviews-for-run",))
    github.add_run(9001)
    with pytest.raises(PermissionDenied):
        forge(github, token).environment_approvers("9001", "production")


def test_replies_are_new_comments_on_pulls_and_issues(github: GitHubServer) -> None:
    github.add_issue(3)
    gh = forge(github)
    first = gh.reply(2, "on it")
    second = gh.reply(2, "on it")  # a reply is never folded into an earlier one
    on_issue = gh.reply(3, "x" * (COMMENT_LIMIT + 10))
    assert (first.action, second.action) == ("created", "created") and first.id != second.id
    assert [c["body"] for c in github.comments_on(2)] == ["on it", "on it"]
    assert first.url == f"{github.origin}/{REPO}/pull/2#issuecomment-{first.id}"
    kept = github.comments_on(3)[0]["body"]
    assert len(kept) == COMMENT_LIMIT and kept.endswith("comment limit)") and on_issue.url.endswith(on_issue.id)
    with pytest.raises(NotFound):
        gh.reply(77, "nobody here")



def test_a_comment_is_read_by_its_web_address_in_this_repository_only(github: GitHubServer) -> None:
    github.add_issue(3)
    on_pull = github.add_comment(2, "/mlops-bot approve v2 production", "maya")
    on_issue = github.add_comment(3, "lgtm", "wes")
    gh = forge(github)
    page = f"{github.origin}/{REPO}"
    address = f"{page}/pull/2#issuecomment-{on_pull}"
    assert gh.comment_by_url(address) == WrittenComment("maya", "/mlops-bot approve v2 production", edited=False)
    assert gh.comment_by_url(f"{page.upper()}/issues/3#issuecomment-{on_issue}") == WrittenComment("wes", "lgtm", False)
    github.edit_comment(on_pull, "/mlops-bot approve v9 production")  # anybody with write access may
    assert gh.comment_by_url(address) == WrittenComment("maya", "/mlops-bot approve v9 production", edited=True)
    assert len(github.calls("issues/get-comment")) == 3
    # another repository's page, another host, a page that is no comment: nothing is asked of GitHub
    for url in (f"{github.origin}/mallory/Hello-World/pull/2#issuecomment-{on_pull}",
                f"https://github.com/{REPO}/pull/2#issuecomment-{on_pull}",
                f"{page}/pull/2#pullrequestreview-{on_pull}", f"{page}/pull/2", f"{page}-fork/pull/2#issuecomment-1",
                f"{page}/pull/2#issuecomment-{on_pull}?x=1", ""):
        assert gh.comment_by_url(url) is None, url
    assert len(github.calls("issues/get-comment")) == 3
    # a comment that is gone, or that is on another discussion than the address says
    assert gh.comment_by_url(f"{page}/pull/2#issuecomment-99999") is None
    assert gh.comment_by_url(f"{page}/pull/3#issuecomment-{on_pull}") is None
    assert [c.status for c in github.calls("issues/get-comment")][3:] == [404, 200]


@pytest.fixture
def loose() -> Iterator[GitHubServer]:
    """A server whose violations the test inspects itself."""
    server = GitHubServer(REPO).start()
    server.add_account(APP_TOKEN, "github-actions[bot]", kind="installation")
    server.add_pull(2, HEAD_SHA)
    yield server
    server.stop()


def test_the_server_refuses_a_route_github_lacks_and_a_malformed_request(loose: GitHubServer) -> None:
    import requests

    headers = {"Authorization": f"token {APP_TOKEN}"}
    lacking = requests.get(f"{loose.api_url}/repos/{REPO}/pulls/2/approvals", headers=headers, timeout=5)
    paged = requests.get(f"{loose.api_url}/repos/{REPO}/pulls/2/reviews", params={"per_page": "500", "sort": "x"},
                         headers=headers, timeout=5)
    assert lacking.status_code == 404 and paged.status_code == 200
    assert loose.violations == [
        f"GET /api/v3/repos/{REPO}/pulls/2/approvals: no such operation in the contract",
        "pulls/list-reviews: request: query parameter 'sort' is not declared",
        "pulls/list-reviews: request: per_page='500' is not an integer in 1..100"]


def test_the_server_flags_an_answer_outside_the_description(loose: GitHubServer) -> None:
    loose.fail("pulls/list-reviews", 200, body=[{"id": "one", "state": "APPROVED"}])
    loose.fail("issues/get", 404, body={"message": "Not Found", "status": 404})
    assert forge(loose).approvers(2) == []  # a review without a reviewer approves nothing
    with pytest.raises(NotFound):
        forge(loose).discussion(2)
    problems = "\n".join(loose.violations)
    assert "pulls/list-reviews: response 200: 0/id: 'one' is not of type 'integer'" in problems
    assert "issues/get: response 404: status: 404 is not of type 'string'" in problems
