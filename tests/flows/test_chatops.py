"""`mlops-bot chatops` in a GitHub workflow on issue_comment, against the GitHub stand-in (roles, pull requests and
replies through GitHub's API description) and the embedded registry: who may do what, where, and what moves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.config.model import Config
from tests.chatops.builders import (
    MAINTAINER,
    PR,
    READER,
    WRITER,
    Answered,
    approval_of,
    comment_payload,
    holder,
    run_chatops,
    with_versions,
    write_project,
)
from tests.helpers.ci_env import HEAD_SHA
from tests.helpers.event_projects import audit_lines
from tests.helpers.projects import deployed
from tests.servers.github_server import GitHubServer

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def project(tmp_path: Path, github: GitHubServer) -> Config:
    config = write_project(tmp_path / "repo")
    with_versions(config, tmp_path / "runs")
    github.add_pull(PR, HEAD_SHA)
    github.add_collaborator(MAINTAINER, "maintain")
    github.add_collaborator(WRITER, "write")
    github.add_collaborator(READER, "read")
    return config


Chat = Callable[..., Answered]  # (body, login=MAINTAINER, *extra args, **comment_payload changes)


@pytest.fixture
def chatops(project: Config, github: GitHubServer, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> Chat:
    def run(body: str, login: str = MAINTAINER, *extra: str, **changes: Any) -> Answered:
        return run_chatops(monkeypatch, capsys, project.root, github.api_url, comment_payload(body, login, **changes),
                           *extra)
    return run


def replies(github: GitHubServer, number: int = PR) -> list[str]:
    return [c["body"] for c in github.comments_on(number)]


def test_a_maintainers_approval_is_recorded_on_the_version_and_in_the_audit_log_once(
        chatops: Chat, project: Config, github: GitHubServer) -> None:
    first = chatops("Looks good.\n/mlops-bot approve v2 production")
    assert first.code == 0 and first.result["outcome"] == "done" and first.result["allowed"] is True
    # the role and the pull request read through the API, then one reply: the only write to GitHub
    assert [s.operation for s in github.seen] == ["repos/get-collaborator-permission-level", "issues/get",
                                                  "pulls/get", "issues/create-comment"]
    approval = approval_of(project.root, "2", "production")
    assert approval is not None
    assert (approval["by"], approval["via"], approval["role"]) == (MAINTAINER, "comment", "maintain")
    assert approval["where"] == f"https://github.com/Codertocat/Hello-World/pull/{PR}#issuecomment-492700400"
    assert approval["at"].endswith("+00:00")
    recorded = [e for e in audit_lines(project.root) if e["type"] == "approval.recorded"]
    assert len(recorded) == 1 and recorded[0]["data"]["by"] == MAINTAINER and recorded[0]["data"]["version"] == "2"
    (answer,) = replies(github)
    assert f"@{MAINTAINER} recorded your approval of v2 for production" in answer
    # the same comment again (a re-run job): nothing new
    again = chatops("Looks good.\n/mlops-bot approve v2 production")
    assert again.code == 0 and again.result["outcome"] == "already"
    assert approval_of(project.root, "2", "production") == approval
    assert len([e for e in audit_lines(project.root) if e["type"] == "approval.recorded"]) == 1
    assert "already recorded" in replies(github)[-1]
    assert first.outputs["chatops-command"] == "approve" and first.outputs["chatops-ref"] == ""


def test_a_reader_is_refused_politely_and_nothing_moves(chatops: Chat, project: Config,
                                                       github: GitHubServer) -> None:
    answered = chatops("/mlops-bot promote v1 staging", READER)
    assert answered.code == 0 and answered.result["outcome"] == "refused" and answered.result["allowed"] is False
    assert holder(project.root, "staging") is None and deployed(project.root) == []
    (answer,) = replies(github)
    assert answer.count("@") == 1 and f"@{READER} sorry, only people with at least write access" in answer
    assert "your role here: read" in answer


def test_an_approval_needs_the_stages_own_permission(chatops: Chat, project: Config) -> None:
    answered = chatops("/mlops-bot approve v2 production", WRITER)
    assert answered.result["outcome"] == "refused" and "at least maintain" in answered.result["reason"]
    assert approval_of(project.root, "2", "production") is None


@pytest.mark.parametrize(("setup", "expected"), [
    (lambda g: g.close_pull(PR), "this pull request is closed"),
    (lambda g: g.close_pull(PR, merged=True), "this pull request is merged"),
    (lambda g: g.add_pull(PR, HEAD_SHA, head_repo="mallory/Hello-World"),
     "commands on a pull request from a fork never run with this repository's token"),
])
def test_closed_merged_and_fork_pull_requests_refuse_every_command(chatops: Chat, project: Config, github: GitHubServer,
                                                                   setup: Callable[[GitHubServer], None],
                                                                   expected: str) -> None:
    setup(github)
    for body in ("/mlops-bot approve v2 production", "/mlops-bot rerun", "/mlops-bot rollback"):
        answered = chatops(body)
        assert answered.result["outcome"] == "refused" and expected in answered.result["reason"], body
        assert answered.outputs["chatops-ref"] == ""
    assert approval_of(project.root, "2", "production") is None


def test_an_unknown_version_or_stage_is_answered_with_what_exists(chatops: Chat, project: Config,
                                                                   github: GitHubServer) -> None:
    missing = chatops("/mlops-bot approve v99 production")
    assert missing.result["outcome"] == "refused"
    assert missing.result["reason"] == "v99 of demo does not exist; versions: v2, v1."
    typo = chatops("/mlops-bot approve v2 prodution")
    assert "no stage 'prodution'" in typo.result["reason"] and "did you mean 'production'" in typo.result["reason"]
    needless = chatops("/mlops-bot approve v2 staging")
    assert needless.result["reason"] == "staging needs no approval; nothing to approve."
    assert approval_of(project.root, "2", "production") is None and approval_of(project.root, "2", "staging") is None
    assert len(replies(github)) == 3


def test_edited_comments_and_bots_are_ignored_without_a_reply(chatops: Chat, project: Config,
                                                               github: GitHubServer) -> None:
    edited = chatops("/mlops-bot approve v2 production", action="edited")
    by_bot = chatops("/mlops-bot approve v2 production", "github-actions[bot]", user_type="Bot")
    for answered in (edited, by_bot):
        assert answered.code == 0 and answered.result["outcome"] == "ignored"
        assert answered.outputs["chatops-command"] == ""
    assert "edited" in edited.result["reason"] and "bot" in by_bot.result["reason"]
    assert replies(github) == [] and approval_of(project.root, "2", "production") is None


def test_help_and_unknown_commands_list_the_forms(chatops: Chat, github: GitHubServer) -> None:
    answered = chatops("/mlops-bot deploy v2 @everyone")
    assert answered.result["outcome"] == "help"
    (answer,) = replies(github)
    assert "unknown command 'deploy'" in answer and "/mlops-bot approve v7 production" in answer
    # the comment's text is quoted in a code span only, where no forge expands a mention
    quoted = "`/mlops-bot deploy v2 @everyone`"
    assert quoted in answer and "@everyone" not in answer.replace(quoted, "")


def test_a_disabled_command_is_refused(project: Config, github: GitHubServer, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write_project(tmp_path / "only-rerun", "{permission: write, commands: [rerun]}")
    answered = run_chatops(monkeypatch, capsys, config.root, github.api_url,
                           comment_payload("/mlops-bot promote v1 staging"))
    assert answered.result["outcome"] == "refused" and "'promote' is not enabled" in answered.result["reason"]


def test_promote_then_rollback_through_comments_and_their_replays(chatops: Chat, project: Config,
                                                                  github: GitHubServer) -> None:
    first = chatops("/mlops-bot promote v1", WRITER, comment_id=1001)  # the entry stage: staging
    assert first.result["outcome"] == "done", first.result
    second = chatops("/mlops-bot promote v2 staging", WRITER, comment_id=1002)
    assert second.result["outcome"] == "done", second.result
    assert holder(project.root, "staging") == "2" and deployed(project.root) == ["1", "2"]
    replayed = chatops("/mlops-bot promote v2 staging", WRITER, comment_id=1002)
    assert replayed.result["outcome"] == "already" and "already done by this comment" in replayed.result["reason"]
    # production needs an approval first: refused politely, then approved, then promoted
    refused = chatops("/mlops-bot promote v2 production", WRITER, comment_id=1003)
    assert refused.code == 0 and refused.result["outcome"] == "refused" and holder(project.root, "production") is None
    # the approval's comment is on GitHub (the promotion reads it again there before it counts)
    approval = github.add_comment(PR, "/mlops-bot approve v2 production", MAINTAINER)
    assert chatops("/mlops-bot approve v2 production", MAINTAINER, comment_id=approval,
                   origin=github.origin).result["outcome"] == "done"
    promoted = chatops("/mlops-bot promote v2 production", WRITER, comment_id=1005)
    assert promoted.result["outcome"] == "done" and holder(project.root, "production") == "2"
    rolled = chatops("/mlops-bot rollback staging", WRITER, comment_id=1006)
    assert rolled.result["outcome"] == "done" and holder(project.root, "staging") == "1", rolled.result
    again = chatops("/mlops-bot rollback staging", WRITER, comment_id=1006)
    assert again.result["outcome"] == "already" and holder(project.root, "staging") == "1"
    assert "already done by this comment" in again.result["reason"]
    moved = [e["data"] for e in audit_lines(project.root) if e["type"] == "alias.moved"]
    assert [(m["alias"], m["version"]) for m in moved if m["alias"] in ("staging", "production")] == [
        ("staging", "1"), ("staging", "2"), ("production", "2"), ("staging", "1")]


def test_rerun_asks_the_workflow_to_check_the_head_commit_again(chatops: Chat, github: GitHubServer) -> None:
    answered = chatops("/mlops-bot rerun", WRITER)
    assert answered.result["outcome"] == "pending" and answered.outputs["chatops-ref"] == HEAD_SHA
    assert answered.outputs["chatops-command"] == "rerun" and HEAD_SHA[:12] in replies(github)[0]
    after = chatops("/mlops-bot rerun", WRITER, "--after-check")
    assert after.result["outcome"] == "done" and after.outputs["chatops-ref"] == "" and len(replies(github)) == 1


def test_rerun_and_compare_need_a_pull_request(chatops: Chat, github: GitHubServer) -> None:
    github.add_issue(5)
    answered = chatops("/mlops-bot rerun", WRITER, number=5)
    assert answered.result["outcome"] == "refused" and "works on a pull/merge request" in answered.result["reason"]
    assert answered.outputs["chatops-ref"] == "" and len(replies(github, 5)) == 1


def head_run(project: Config, accuracy: float, sha: str = HEAD_SHA, **extra: str) -> str:
    """A finished pipeline run of the pull request's head commit, as its check leaves one."""
    from mlops_bot.registry import tags
    from mlops_bot.registry.local.store import LocalRegistry

    registry = LocalRegistry(project.root / ".mlops-bot")
    try:
        experiment = registry.get_or_create_experiment(project.tracking.experiment)
        run = registry.create_run(experiment.experiment_id, "pr-check", {
            tags.MLFLOW_GIT_COMMIT: sha, tags.PIPELINE_KEY: "k" * 64, **extra})
        registry.log_batch(run.run_id, metrics={"accuracy": accuracy})
        registry.update_run(run.run_id, "FINISHED")
        return run.run_id
    finally:
        registry.close()


def test_compare_against_a_version_waits_for_the_check_then_answers_with_the_report(
        chatops: Chat, project: Config, github: GitHubServer) -> None:
    head_run(project, 0.99, sha="0" * 40)  # another commit's run does not count
    head_run(project, 0.99, **{"mlops_bot.git.dirty": "true"})  # nor one of a dirty tree
    waiting = chatops("/mlops-bot compare against v1", WRITER)
    assert waiting.result["outcome"] == "pending" and waiting.outputs["chatops-ref"] == HEAD_SHA
    not_yet = chatops("/mlops-bot compare against v1", WRITER, "--after-check")
    assert not_yet.result["outcome"] == "unavailable" and not_yet.outputs["chatops-ref"] == ""
    run_id = head_run(project, 0.8)  # worse than v1 (0.9)
    done = chatops("/mlops-bot compare v1", WRITER, "--after-check")
    assert done.result["outcome"] == "done" and done.outputs["chatops-ref"] == ""
    assert f"run {run_id} with v1" in done.result["reason"] and "fail" in done.result["reason"]
    answer = replies(github)[-1]
    assert answer.startswith("<!-- mlops-bot:chatops -->\n@wri-ter compared") and "accuracy" in answer
    assert "0.8" in answer and "0.9" in answer
    better = chatops("/mlops-bot compare against v1", WRITER, comment_id=7)  # a run exists: answered at once
    assert better.result["outcome"] == "done" and better.outputs["chatops-ref"] == ""
    assert holder(project.root, "staging") is None  # comparing moves nothing


def test_a_failure_is_answered_and_exits_as_the_command_line_would(chatops: Chat, project: Config,
                                                                   github: GitHubServer) -> None:
    (project.root / "fail-deploy").write_text("")  # the deploy target's command fails
    failed = chatops("/mlops-bot promote v1 staging", WRITER)
    assert failed.code == 3 and failed.result == {}
    (answer,) = replies(github)
    assert answer.startswith("<!-- mlops-bot:chatops -->\n@wri-ter that failed:") and "record" in answer
    assert holder(project.root, "staging") == "1"  # the move is recorded before the deploy, as `promote` does
