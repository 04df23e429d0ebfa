"""Reading the CI context from real GitHub event payloads and GitLab's predefined variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_bot.ci.context import GITLAB_SERVER, CIContext, read_context, read_forge_context, token_of
from mlops_bot.errors import UsageError
from tests.helpers.ci_env import APP_TOKEN, EVENTS, HEAD_SHA, MERGE_SHA, MR_SHA, REPO, github_env, gitlab_env


def github(tmp_path: Path, event: str, payload: str, **extra: str) -> dict[str, str]:
    env = github_env(None, tmp_path, event=event, payload=payload)
    env.update(extra)
    return env


@pytest.mark.parametrize("payload", ["pull_request-opened.payload.json", "pull_request-synchronize.payload.json"])
def test_pull_request_reports_on_the_head_commit_not_the_merge_commit(tmp_path: Path, payload: str) -> None:
    context = read_context(github(tmp_path, "pull_request", payload))
    assert context.flow == "check" and context.platform == "github"
    assert context.sha == HEAD_SHA != MERGE_SHA
    assert context.pr_number == 2
    assert (context.branch, context.base_branch, context.default_branch) == ("changes", "master", "master")
    assert context.fork is False
    assert context.repository == REPO
    assert context.run_url == f"https://github.example/{REPO}/actions/runs/9001"
    assert context.token_present and context.workflow == "ml.yml"
    assert APP_TOKEN not in repr(context)
    # where the bot's last status is: the head before this push, which only a synchronize payload says
    synchronize = payload == "pull_request-synchronize.payload.json"
    assert context.previous_sha == ("f95f852bd8fca8fcc58a9a2d6c842781e32a215e" if synchronize else "")


def test_a_fork_pull_request_is_seen_as_one(tmp_path: Path) -> None:
    doc = json.loads((EVENTS / "pull_request-opened.payload.json").read_text())
    doc["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
    (tmp_path / "fork.json").write_text(json.dumps(doc))
    context = read_context(github(tmp_path, "pull_request", "x", GITHUB_EVENT_PATH=str(tmp_path / "fork.json")))
    assert context.fork is True and context.flow == "check"
    doc["pull_request"]["head"]["repo"] = None  # the fork was deleted
    (tmp_path / "gone.json").write_text(json.dumps(doc))
    assert read_context(github(tmp_path, "pull_request", "x", GITHUB_EVENT_PATH=str(tmp_path / "gone.json"))).fork


def test_a_closed_pull_request_needs_nothing(tmp_path: Path) -> None:
    context = read_context(github(tmp_path, "pull_request", "pull_request-closed.payload.json"))
    assert context.flow == "none" and "closed" in context.reason and context.sha == HEAD_SHA


def test_pull_request_target_is_refused_with_the_reason(tmp_path: Path) -> None:
    context = read_context(github(tmp_path, "pull_request_target", "pull_request-opened.payload.json"))
    assert context.flow == "none" and "unsafe" in context.reason


def test_push_to_the_default_branch_promotes(tmp_path: Path) -> None:
    sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    context = read_context(github(tmp_path, "push", "push-with-new-branch.payload.json", GITHUB_SHA=sha,
                                  GITHUB_REF="refs/heads/master"))
    assert context.flow == "promote" and context.branch == "master"
    assert context.sha == sha and context.pr_number is None


def test_push_to_another_branch_and_a_deleted_tag_need_nothing(tmp_path: Path) -> None:
    doc = json.loads((EVENTS / "push-with-new-branch.payload.json").read_text())
    doc["ref"] = "refs/heads/feature"
    (tmp_path / "feature.json").write_text(json.dumps(doc))
    feature = read_context(github(tmp_path, "push", "x", GITHUB_EVENT_PATH=str(tmp_path / "feature.json")))
    assert feature.flow == "none" and "not the default branch" in feature.reason
    deleted = read_context(github(tmp_path, "push", "push-payload.json", GITHUB_REF="refs/tags/simple-tag"))
    assert deleted.flow == "none" and "deleted" in deleted.reason


def test_a_pushed_tag_is_gated(tmp_path: Path) -> None:
    doc = json.loads((EVENTS / "push-payload.json").read_text())
    doc.update(deleted=False, after="6113728f27ae82c7b1a177c8d03f9e96e0adf246")
    (tmp_path / "tag.json").write_text(json.dumps(doc))
    context = read_context(github(tmp_path, "push", "x", GITHUB_EVENT_PATH=str(tmp_path / "tag.json"), GITHUB_SHA=""))
    assert (context.flow, context.tag) == ("gate", "simple-tag")
    assert context.sha == "6113728f27ae82c7b1a177c8d03f9e96e0adf246"


def test_a_published_release_is_gated(tmp_path: Path) -> None:
    context = read_context(github(tmp_path, "release", "release-published.payload.json", GITHUB_REF="refs/tags/0.0.1"))
    assert (context.flow, context.tag, context.ref) == ("gate", "0.0.1", "refs/tags/0.0.1")


def test_workflow_dispatch_follows_its_ref_or_the_flow_input(tmp_path: Path) -> None:
    context = read_context(github(tmp_path, "workflow_dispatch", "workflow_dispatch-payload.json"))
    assert context.flow == "promote" and context.inputs == {"name": "Mona the Octocat"}
    assert context.repository == REPO  # GITHUB_REPOSITORY wins over the payload's
    doc = json.loads((EVENTS / "workflow_dispatch-payload.json").read_text())
    doc["inputs"] = {"flow": "gate"}
    (tmp_path / "gate.json").write_text(json.dumps(doc))
    assert read_context(github(tmp_path, "workflow_dispatch", "x",
                               GITHUB_EVENT_PATH=str(tmp_path / "gate.json"))).flow == "gate"


def test_a_dispatched_flow_outside_the_known_flows_is_not_taken(tmp_path: Path) -> None:
    doc = json.loads((EVENTS / "workflow_dispatch-payload.json").read_text())
    doc["inputs"] = {"flow": "deploy"}
    (tmp_path / "deploy.json").write_text(json.dumps(doc))
    context = read_context(github(tmp_path, "workflow_dispatch", "x", GITHUB_EVENT_PATH=str(tmp_path / "deploy.json")))
    assert context.flow == "promote" and "dispatched" not in context.reason  # the ref decides, as without the input


def test_an_event_the_bot_does_not_handle_gives_flow_none_with_a_notice(tmp_path: Path) -> None:
    context = read_context(github(tmp_path, "check_suite", "issue_comment-created.payload.json"))
    assert context.flow == "none" and "'check_suite'" in context.reason
    assert "not one mlops-bot handles" in context.reason


def test_an_issue_comment_is_left_to_chatops_and_names_its_pull_request(tmp_path: Path) -> None:
    on_issue = read_context(github(tmp_path, "issue_comment", "issue_comment-created.payload.json"))
    assert on_issue.flow == "none" and on_issue.pr_number is None and "mlops-bot chatops" in on_issue.reason
    on_pr = read_context(github(tmp_path, "issue_comment", "issue_comment-created-on-pull-request.payload.json"))
    assert on_pr.flow == "none" and on_pr.pr_number == 1 and on_pr.sha != HEAD_SHA
    # the check after a ChatOps command: the head commit chatops found through the API
    again = read_context(github(tmp_path, "issue_comment", "issue_comment-created-on-pull-request.payload.json",
                                MLOPS_BOT_SHA=HEAD_SHA))
    assert (again.flow, again.sha, again.pr_number) == ("check", HEAD_SHA, 1)
    not_a_sha = read_context(github(tmp_path, "issue_comment", "issue_comment-created-on-pull-request.payload.json",
                                    MLOPS_BOT_SHA="main; rm -rf /"))
    assert not_a_sha.flow == "none"
    on_issue_with_sha = read_context(github(tmp_path, "issue_comment", "issue_comment-created.payload.json",
                                            MLOPS_BOT_SHA=HEAD_SHA))
    assert on_issue_with_sha.flow == "none"  # an issue has no check to run


def test_workflow_run_carries_the_pull_request_for_a_follow_up_job(tmp_path: Path) -> None:
    doc = {"workflow_run": {"head_sha": HEAD_SHA, "head_branch": "changes", "pull_requests": [{"number": 2}]},
           "repository": {"full_name": REPO, "default_branch": "master"}}
    (tmp_path / "run.json").write_text(json.dumps(doc))
    context = read_context(github(tmp_path, "workflow_run", "x", GITHUB_EVENT_PATH=str(tmp_path / "run.json")))
    assert (context.flow, context.sha, context.pr_number) == ("none", HEAD_SHA, 2)


@pytest.mark.parametrize(("path", "expected"), [
    ("", "GITHUB_EVENT_PATH is not set"),
    ("/nonexistent/event.json", "cannot read the GitHub event file /nonexistent/event.json"),
])
def test_a_missing_event_file_is_a_usage_error(tmp_path: Path, path: str, expected: str) -> None:
    with pytest.raises(UsageError, match=expected) as caught:
        read_context(github(tmp_path, "pull_request", "x", GITHUB_EVENT_PATH=path))
    assert caught.value.exit_code == 2


def test_an_unreadable_or_malformed_event_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"pull_request": ')
    with pytest.raises(UsageError, match=r"broken.json:1:\d+: the GitHub event file is not valid JSON"):
        read_context(github(tmp_path, "pull_request", "x", GITHUB_EVENT_PATH=str(tmp_path / "broken.json")))
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(UsageError, match="JSON list, not an object"):
        read_context(github(tmp_path, "pull_request", "x", GITHUB_EVENT_PATH=str(tmp_path / "list.json")))
    with pytest.raises(UsageError, match=r"no pull_request.number; is GITHUB_EVENT_NAME right"):
        read_context(github(tmp_path, "pull_request", "push-payload.json"))
    with pytest.raises(UsageError, match="cannot read"):
        read_context(github(tmp_path, "pull_request", "x", GITHUB_EVENT_PATH=str(tmp_path)))  # a directory


def test_gitlab_merge_request_pipeline(tmp_path: Path) -> None:
    context = read_context(gitlab_env(None))
    assert (context.platform, context.flow, context.pr_number, context.sha) == ("gitlab", "check", 7, MR_SHA)
    assert (context.branch, context.base_branch, context.project_id) == ("feature", "main", "42")
    assert context.api_url == "https://gitlab.example/api/v4" and not context.fork and context.token_present
    merged = read_context(gitlab_env(None, merged_results=True))
    assert merged.sha == MR_SHA  # the source branch's head, not the merged-results commit
    forked = read_context({**gitlab_env(None), "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "99"})
    assert forked.fork


def test_gitlab_branch_and_tag_pipelines() -> None:
    push = {**gitlab_env(None), "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main"}
    del push["CI_MERGE_REQUEST_IID"]
    assert read_context(push).flow == "promote"
    assert read_context({**push, "CI_COMMIT_BRANCH": "feature"}).flow == "none"
    tag = {**push, "CI_COMMIT_BRANCH": "", "CI_COMMIT_TAG": "v1.2.0"}
    assert (read_context(tag).flow, read_context(tag).tag) == ("gate", "v1.2.0")
    with pytest.raises(UsageError, match="CI_MERGE_REQUEST_IID is not set"):
        read_context({**push, "CI_PIPELINE_SOURCE": "merge_request_event"})


def test_tokens_are_looked_up_in_order_and_never_kept() -> None:
    assert token_of("github", {"GH_TOKEN": "b", "GITHUB_TOKEN": "a"}) == ("GITHUB_TOKEN", "a")
    assert token_of("gitlab", {"CI_JOB_TOKEN": "j"}) == ("CI_JOB_TOKEN", "j")
    assert token_of("gitlab", {"CI_JOB_TOKEN": "j", "GITLAB_TOKEN": "p"}) == ("GITLAB_TOKEN", "p")
    assert token_of("local", {"GITHUB_TOKEN": "a"}) == ("", "")
    assert not read_context({**gitlab_env(None, token="")}).token_present


def test_outside_ci_is_local() -> None:
    context = read_context({"HOME": "/root"})
    assert (context.platform, context.flow, context.in_ci) == ("local", "check", False)


RETRAIN = "an `on:` rule asked to retrain"


def located(context: CIContext) -> tuple[str, ...]:
    """Where a context says the forge and the project are: what a forge adapter is opened with."""
    return (context.platform, context.server_url, context.api_url, context.repository, context.project_id,
            str(context.token_present))


@pytest.mark.parametrize("urls", [
    {},  # github.com: both readers fall back on the same default URLs
    {"GITHUB_SERVER_URL": "https://ghe.example/", "GITHUB_API_URL": "https://ghe.example/api/v3/"},
    {"GITHUB_SERVER_URL": "", "GITHUB_API_URL": ""},
])
def test_outside_ci_github_is_located_as_a_github_job_would_be(tmp_path: Path, urls: dict[str, str]) -> None:
    job = github(tmp_path, "push", "push-with-new-branch.payload.json")
    for name in ("GITHUB_SERVER_URL", "GITHUB_API_URL"):
        del job[name]
    job.update(urls)
    outside = {k: v for k, v in job.items() if not k.startswith(("GITHUB_ACTIONS", "GITHUB_EVENT"))}
    forge = read_forge_context({**outside, "MLOPS_BOT_FORGE": "github"}, reason=RETRAIN)
    assert located(forge) == located(read_context(job))
    if not urls.get("GITHUB_API_URL"):
        assert (forge.server_url, forge.api_url) == ("https://github.com", "https://api.github.com")
    assert (forge.flow, forge.event, forge.reason) == ("none", "mlops-bot", RETRAIN)
    assert APP_TOKEN not in repr(forge)


@pytest.mark.parametrize("urls", [
    {},  # as GitLab sets them
    {"CI_API_V4_URL": None},  # the API derived from the server, by both readers
    {"CI_API_V4_URL": ""},
    {"CI_SERVER_URL": "https://gitlab.example/", "CI_API_V4_URL": "https://gitlab.example/api/v4/"},
])
def test_outside_ci_gitlab_is_located_as_a_gitlab_job_would_be(urls: dict[str, str | None]) -> None:
    job = gitlab_env(None)
    for name, value in urls.items():
        if value is None:
            del job[name]
        else:
            job[name] = value
    outside = {k: v for k, v in job.items() if k not in ("GITLAB_CI", "CI")}
    forge = read_forge_context({**outside, "MLOPS_BOT_FORGE": " GitLab "}, reason=RETRAIN)
    assert located(forge) == located(read_context(job))
    assert (forge.server_url, forge.api_url) == ("https://gitlab.example", "https://gitlab.example/api/v4")
    assert forge.default_branch == read_context(job).default_branch == "main"


def test_outside_ci_gitlab_defaults_to_gitlab_com_where_a_job_needs_ci_server_url() -> None:
    outside = {"MLOPS_BOT_FORGE": "gitlab", "CI_PROJECT_ID": "42", "CI_PROJECT_PATH": "group/project"}
    forge = read_forge_context(outside, reason=RETRAIN)
    assert (forge.server_url, forge.api_url) == (GITLAB_SERVER, f"{GITLAB_SERVER}/api/v4")
    job = {k: v for k, v in gitlab_env(None).items() if k not in ("CI_SERVER_URL", "CI_API_V4_URL")}
    with pytest.raises(UsageError, match="CI_SERVER_URL is not set although GITLAB_CI=true"):
        read_context(job)  # inside GitLab CI the variable is always set: its absence is a misconfigured job


@pytest.mark.parametrize("forge", ["", "bitbucket"])
def test_outside_ci_the_forge_must_be_named(forge: str) -> None:
    expected = (r"an `on:` rule asked to retrain outside CI: set MLOPS_BOT_FORGE=github \(with GITHUB_REPOSITORY "
                r"and GITHUB_TOKEN\) or MLOPS_BOT_FORGE=gitlab")
    with pytest.raises(UsageError, match=expected) as caught:
        read_forge_context({"MLOPS_BOT_FORGE": forge, "GITHUB_REPOSITORY": "o/r"}, reason=RETRAIN)
    assert ("'bitbucket'" in str(caught.value)) == bool(forge)
