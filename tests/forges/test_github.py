"""The GitHub adapter against the local GitHub server: the sticky comment, identity, retries and errors."""

from __future__ import annotations

import time

import pytest

from mlops_bot.errors import AuthError, InvalidParameter, NotFound, RemoteError, UsageError
from mlops_bot.forges.base import PermissionDenied, StatusRef
from mlops_bot.forges.github import STATUS_PAGES, GitHubForge, GitHubSettings
from tests.helpers.ci_env import APP_TOKEN, HEAD_SHA, REPO, USER_TOKEN
from tests.servers.github_server import SECONDARY_LIMIT, GitHubServer

MARKER = "<!-- mlops-bot:report model=iris-classifier -->"


def forge(server: GitHubServer, token: str = APP_TOKEN, budget: float = 30.0, **kwargs: object) -> GitHubForge:
    settings = GitHubSettings(api_url=server.api_url, repository=REPO, number=2, budget=budget, write_interval=0,
                              workflow="ml.yml", **kwargs)  # type: ignore[arg-type]
    return GitHubForge(settings, token)


def body(text: str) -> str:
    return f"{MARKER}\n{text}"


def test_a_second_report_edits_the_first_comment(github: GitHubServer) -> None:
    first = forge(github).upsert_comment(MARKER, body("v1"))
    again = forge(github).upsert_comment(MARKER, body("v1"))
    edited = forge(github).upsert_comment(MARKER, body("v2"))
    assert (first.action, again.action, edited.action) == ("created", "unchanged", "updated")
    assert first.id == again.id == edited.id
    assert [c["body"] for c in github.comments_on(2)] == [body("v2")]
    assert len(github.calls("issues/update-comment")) == 1  # "unchanged" wrote nothing


def test_250_comments_with_quoted_markers_still_find_the_bots_own(github: GitHubServer) -> None:
    others = {}
    for i in range(250):
        text = f"comment {i}" + (f"\n> {MARKER}\n> quoted" if i % 40 == 3 else "")
        others[github.add_comment(2, text, f"user{i % 7}")] = text
    others[github.add_comment(2, body("from another bot"), "other-app[bot]")] = body("from another bot")
    own = github.add_comment(2, body("old"), "github-actions[bot]")
    github.add_comment(2, "a later comment", "user1")
    result = forge(github).upsert_comment(MARKER, body("new"))
    assert (result.action, result.id) == ("updated", str(own))
    assert github.comments[own]["body"] == body("new")
    assert all(github.comments[i]["body"] == text for i, text in others.items())
    assert len(github.comments_on(2)) == 253
    pages = github.calls("issues/list-comments")
    assert len(pages) == 3 and all(p.query["per_page"] == ["100"] for p in pages)


def test_no_own_comment_among_many_creates_one_after_reading_every_page(github: GitHubServer) -> None:
    for i in range(230):
        github.add_comment(2, body(f"spoof {i}") if i % 50 == 0 else "lgtm", f"user{i % 3}")
    result = forge(github).upsert_comment(MARKER, body("mine"))
    assert result.action == "created" and len(github.comments_on(2)) == 231
    assert len(github.calls("issues/list-comments")) == 3
    assert github.comments_on(2)[-1]["login"] == "github-actions[bot]"


def test_a_personal_token_learns_its_login_from_get_user_only_when_needed(github: GitHubServer) -> None:
    github.add_account(USER_TOKEN, "octobot")
    forge(github, USER_TOKEN).upsert_comment(MARKER, body("first"))
    assert github.calls("users/get-authenticated") == []  # no marker yet: nobody to tell apart
    github.add_comment(2, body("spoof"), "mallory")
    result = forge(github, USER_TOKEN).upsert_comment(MARKER, body("second"))
    assert result.action == "updated" and len(github.calls("users/get-authenticated")) == 1
    assert [c["login"] for c in github.comments_on(2)] == ["octobot", "mallory"]


def test_a_github_app_token_posts_as_the_configured_login(github: GitHubServer) -> None:
    app_token = "ghs_" + "Pp0" * 12
    github.add_account(app_token, "mlops-app[bot]", kind="installation")
    github.add_comment(2, body("written by another workflow"), "github-actions[bot]")
    first = forge(github, app_token, login="mlops-app[bot]").upsert_comment(MARKER, body("a"))
    second = forge(github, app_token, login="mlops-app[bot]").upsert_comment(MARKER, body("b"))
    assert first.action == "created" and second.action == "updated" and first.id == second.id
    assert github.calls("users/get-authenticated") == []  # an installation token may not read GET /user


def test_the_status_lands_on_the_given_sha(github: GitHubServer) -> None:
    forge(github).set_status(HEAD_SHA, "failure", "accuracy " * 40, "https://ci.example/run/1", "mlops-bot/iris")
    (status,) = github.statuses
    assert (status["sha"], status["state"], status["context"]) == (HEAD_SHA, "failure", "mlops-bot/iris")
    assert len(status["description"]) <= 140 and status["target_url"] == "https://ci.example/run/1"


@pytest.mark.slow  # honours two Retry-After: 1
def test_secondary_rate_limits_are_waited_out(github: GitHubServer) -> None:
    github.fail("issues/list-comments", 403, SECONDARY_LIMIT, {"Retry-After": "1"})
    github.fail("issues/create-comment", 429, SECONDARY_LIMIT, {"Retry-After": "1"})
    assert forge(github).upsert_comment(MARKER, body("x")).action == "created"
    for operation in ("issues/list-comments", "issues/create-comment"):
        limited, retried = github.calls(operation)
        assert (limited.status, retried.status) in ((403, 200), (429, 201))
        assert retried.at - limited.at >= 0.9  # Retry-After was honoured
    assert len(github.comments_on(2)) == 1


@pytest.mark.slow  # waits for a reset 1 s away
def test_a_429_without_retry_after_waits_for_the_rate_limit_reset(github: GitHubServer) -> None:
    reset = str(int(time.time()) + 1)
    github.fail("repos/create-commit-status", 429, "API rate limit exceeded",
                {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset})
    forge(github).set_status(HEAD_SHA, "success", "ok")
    limited, retried = github.calls("repos/create-commit-status")
    assert retried.status == 201 and retried.at >= limited.at + 0.5


@pytest.mark.slow  # PyGithub's real backoff, twice
def test_server_errors_are_retried(github: GitHubServer) -> None:
    github.fail("*", 502, "Server Error", times=2)
    assert forge(github).upsert_comment(MARKER, body("x")).action == "created"
    assert [s.status for s in github.seen][:3] == [502, 502, 200]


@pytest.mark.slow  # spends a 2 s retry budget
def test_retries_stop_at_the_time_budget(github: GitHubServer) -> None:
    github.fail("issues/list-comments", 403, SECONDARY_LIMIT, {"Retry-After": "30"})
    with pytest.raises(RemoteError) as caught:
        forge(github, budget=2).upsert_comment(MARKER, body("x"))
    assert not isinstance(caught.value, PermissionDenied)  # a rate limit is not a permission problem
    assert "rate limit did not lift" in str(caught.value) and len(github.calls()) == 1
    github.fail("issues/list-comments", 503, "unavailable", times=50)
    with pytest.raises(RemoteError, match=r"HTTP 503 .*kept failing after retries"):
        forge(github, budget=2).upsert_comment(MARKER, body("x"))


def test_a_read_only_token_is_permission_denied(github: GitHubServer) -> None:
    github.accounts[APP_TOKEN].write = False
    with pytest.raises(PermissionDenied, match=r"HTTP 403 .*Resource not accessible by integration"):
        forge(github).upsert_comment(MARKER, body("x"))
    with pytest.raises(PermissionDenied):
        forge(github).set_status(HEAD_SHA, "success", "ok")


def test_expired_token_deleted_pull_request_and_rejected_body_are_clear_errors(github: GitHubServer) -> None:
    with pytest.raises(NotFound, match=r"HTTP 404 .*/issues/3/comments: could not list the comments of #3"):
        GitHubForge(GitHubSettings(api_url=github.api_url, repository=REPO, number=3, write_interval=0),
                    APP_TOKEN).upsert_comment(MARKER, body("x"))
    with pytest.raises(InvalidParameter, match="body is too long"):
        forge(github).upsert_comment(MARKER, body("x" * 70_000))
    github.accounts[APP_TOKEN].expired = True
    with pytest.raises(AuthError, match=r"HTTP 401 .*Bad credentials; the token is expired") as caught:
        forge(github).upsert_comment(MARKER, body("x"))
    assert APP_TOKEN not in str(caught.value)


def test_check_runs_are_best_effort(github: GitHubServer) -> None:
    url = forge(github).create_check_run(HEAD_SHA, "mlops-bot", "success", "Pass", "all good", "https://ci/1")
    assert url and github.check_runs[0]["conclusion"] == "success"
    github.add_account(USER_TOKEN, "octobot")
    assert forge(github, USER_TOKEN).create_check_run(HEAD_SHA, "mlops-bot", "success", "Pass", "ok") is None


def test_pull_requests_are_opened_once(github: GitHubServer) -> None:
    assert forge(github).pull_request_head(2) == HEAD_SHA
    with pytest.raises(NotFound, match="could not read pull request #9"):
        forge(github).pull_request_head(9)
    first = forge(github).open_pull_request("deploy/iris-v4", "master", "Deploy iris v4", "body")
    second = forge(github).open_pull_request("deploy/iris-v4", "master", "Deploy iris v4", "body")
    assert first == second and first.endswith("/pull/3")


def test_workflow_dispatch(github: GitHubServer) -> None:
    forge(github).trigger_pipeline("master", {"flow": "promote"})
    assert github.dispatches == [{"workflow": "ml.yml", "ref": "master", "inputs": {"flow": "promote"}}]
    with pytest.raises(UsageError, match="no workflow to dispatch"):
        GitHubForge(GitHubSettings(api_url=github.api_url, repository=REPO), APP_TOKEN).trigger_pipeline("master", {})


# the comment remembered in the bot's earlier status (issue #17)

PREVIOUS = "e" * 40
LABEL = "mlops-bot/iris-classifier"


def remember(github: GitHubServer, comment_id: int, number: int = 2) -> StatusRef:
    github.add_status(PREVIOUS, LABEL, f"{github.origin}/{REPO}/pull/{number}#issuecomment-{comment_id}")
    return StatusRef(LABEL, HEAD_SHA, PREVIOUS)


def test_the_remembered_comment_is_edited_without_reading_the_comments(github: GitHubServer) -> None:
    own = github.add_comment(2, body("old"), "github-actions[bot]")
    result = forge(github).upsert_comment(MARKER, body("new"), remembered=remember(github, own))
    assert (result.action, result.id) == ("updated", str(own)) and github.comments[own]["body"] == body("new")
    assert github.calls("issues/list-comments") == [] and len(github.calls("issues/get-comment")) == 1


def test_a_deleted_remembered_comment_is_created_anew(github: GitHubServer) -> None:
    own = github.add_comment(2, body("old"), "github-actions[bot]")
    ref = remember(github, own)
    del github.comments[own]
    result = forge(github).upsert_comment(MARKER, body("new"), remembered=ref)
    assert result.action == "created" and [c["body"] for c in github.comments_on(2)] == [body("new")]
    assert [c.status for c in github.calls("issues/get-comment")] == [404]
    assert len(github.calls("issues/list-comments")) == 1  # the full scan, as the fallback


@pytest.mark.parametrize("whose", ["someone else's", "another PR's", "another PR's, named as this PR's"])
def test_a_status_naming_a_comment_that_is_not_the_bots_report_here_leaves_it_untouched(
        github: GitHubServer, whose: str) -> None:
    github.add_pull(3, HEAD_SHA, head_ref="other")
    if whose == "someone else's":
        decoy = github.add_comment(2, body("mallory's"), "mallory")
        ref = remember(github, decoy)
    else:
        decoy = github.add_comment(3, body("the report on #3"), "github-actions[bot]")
        ref = remember(github, decoy, number=3 if whose == "another PR's" else 2)
    decoy_body = github.comments[decoy]["body"]
    own = github.add_comment(2, body("old"), "github-actions[bot]")
    result = forge(github).upsert_comment(MARKER, body("new"), remembered=ref)
    assert (result.action, result.id) == ("updated", str(own))
    assert github.comments[decoy]["body"] == decoy_body
    assert len(github.calls("issues/update-comment")) == 1


def test_no_status_falls_back_on_the_scan(github: GitHubServer) -> None:
    for i in range(120):
        github.add_comment(2, f"comment {i}", "reviewer")
    own = github.add_comment(2, body("old"), "github-actions[bot]")
    result = forge(github).upsert_comment(MARKER, body("new"), remembered=StatusRef(LABEL, HEAD_SHA, PREVIOUS))
    assert (result.action, result.id) == ("updated", str(own))
    assert len(github.calls("repos/get-combined-status-for-ref")) == 1
    assert len(github.calls("issues/list-comments")) == 2


def test_the_remembered_status_is_found_past_the_first_page_of_contexts(github: GitHubServer) -> None:
    own = github.add_comment(2, body("old"), "github-actions[bot]")
    ref = remember(github, own)
    for i in range(250):  # other checks set later: newer contexts come first, the bot's on the third page
        github.add_status(PREVIOUS, f"ci/check-{i}", f"https://ci.example/{i}")
    result = forge(github).upsert_comment(MARKER, body("new"), remembered=ref)
    assert (result.action, result.id) == ("updated", str(own)) and github.comments[own]["body"] == body("new")
    pages = github.calls("repos/get-combined-status-for-ref")
    assert [(p.query["per_page"], p.query["page"]) for p in pages] == [(["100"], [str(n)]) for n in (1, 2, 3)]
    assert github.calls("issues/list-comments") == []


def test_the_contexts_are_read_until_total_count_and_at_most_status_pages(github: GitHubServer) -> None:
    own = github.add_comment(2, body("old"), "github-actions[bot]")
    ref = StatusRef(LABEL, HEAD_SHA, PREVIOUS)
    for i in range(200):  # exactly two full pages and no status of the bot's
        github.add_status(PREVIOUS, f"ci/check-{i}", f"https://ci.example/{i}")
    assert forge(github).upsert_comment(MARKER, body("new"), remembered=ref).id == str(own)
    assert len(github.calls("repos/get-combined-status-for-ref")) == 2  # total_count says there is no third
    github.add_status(PREVIOUS, LABEL, f"{github.origin}/{REPO}/pull/2#issuecomment-{own}")
    for i in range(STATUS_PAGES * 100):  # the bot's status buried deeper than the pages read: the scan finds it
        github.add_status(PREVIOUS, f"ci/more-{i}", f"https://ci.example/more/{i}")
    before = len(github.calls("repos/get-combined-status-for-ref")), len(github.calls("issues/list-comments"))
    assert forge(github).upsert_comment(MARKER, body("newer"), remembered=ref).id == str(own)
    after = len(github.calls("repos/get-combined-status-for-ref")), len(github.calls("issues/list-comments"))
    assert (after[0] - before[0], after[1] - before[1]) == (STATUS_PAGES, 1)
