"""An approval on record counts at `promote --stage` only once the forge confirms it: the comment it names (author,
command, this repository), the pull request review still standing, the run's deployment review, and the approver's
role now. Against the GitHub and GitLab stand-ins; a tag written by hand and not confirmed moves nothing. Outside CI
without forge settings the record is trusted as it is (whoever runs the bot there can write the registry)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.chatops.comment import Comment
from mlops_bot.ci.context import read_context
from mlops_bot.cli import main
from mlops_bot.flows.chatops_act import handle
from mlops_bot.flows.project import Project
from mlops_bot.flows.promote import promote_version
from mlops_bot.forges import open_forge
from mlops_bot.lifecycle.approvals import Approval, read_approval
from mlops_bot.lifecycle.history import Mover
from mlops_bot.lifecycle.stages import StageRefused
from mlops_bot.registry import open_registry, tags
from tests.helpers.ci_env import APP_TOKEN, REPO, apply_env, github_env, gitlab_env
from tests.helpers.projects import ML_YAML
from tests.helpers.registries import add_version
from tests.helpers.stages import STAGE_DEPLOYS, deployed, holder, snapshot
from tests.servers.github_server import GitHubServer
from tests.servers.gitlab_server import GitLabServer

pytestmark = pytest.mark.usefixtures("clean_env")

STAGES = """\
promote:
  stages:
    - {{alias: staging, deploy: [staging-record]}}
    - alias: production
      requires: staging
      deploy: [production-record]
      approval: {{permission: maintain, via: [{via}]}}
chatops: {{permission: write}}
"""
ALICE = Mover(by="alice", where="https://ci.example/runs/1")
APPROVE = "/mlops-bot approve v1 production"


def staged(root: Path, via: str = "comment", pull_request: str = "2") -> Path:
    """A project whose v1 reached staging (outside CI) and waits for production's approval."""
    root.mkdir(parents=True)
    (root / "ml.yaml").write_text(ML_YAML.format(model="demo", uri="local", deploy=STAGE_DEPLOYS)
                                  + STAGES.format(via=via))
    with Project(root, env={}) as project:
        version = add_version(project.registry, project.config, root.parent / "runs", 0.9)
        project.registry.set_model_version_tag("demo", version, tags.PULL_REQUEST, pull_request)
        assert promote_version(project, version, "staging", ALICE)[0].promoted
    return root


def write_tag(root: Path, approval: Approval) -> None:
    """The approval tag as anybody with write access to the registry can write it, without the bot."""
    registry = open_registry("local", root)
    try:
        registry.set_model_version_tag("demo", "1", tags.approval_tag("production"), approval.to_json())
    finally:
        registry.close()


def state(root: Path) -> dict[str, Any]:
    registry = open_registry("local", root)
    try:
        return snapshot(registry, "demo")
    finally:
        registry.close()


def production(root: Path) -> str | None:
    registry = open_registry("local", root)
    try:
        return holder(registry, "demo", "production")
    finally:
        registry.close()


def promote(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["-C", str(root), "promote", "--stage", "production", "--version", "1", "--json"])
    out = capsys.readouterr().out  # in GitHub Actions, a refusal's ::error:: annotation comes first
    return code, json.loads(out[out.index("{"):])


def refused_unchanged(root: Path, capsys: pytest.CaptureFixture[str], forge: str, approval: Approval) -> str:
    """Runs `promote --stage production`, checks it refused naming the record and moved nothing; the refusal."""
    before = state(root)
    code, doc = promote(root, capsys)
    assert code == 1 and doc["promoted"] is False, doc
    assert doc["refused"].startswith(f"v1 needs approval for production: the approval on record (by {approval.by} "
                                     f"via {approval.via}, {approval.where}) is not confirmed by {forge}: ")
    assert doc["refused"].endswith("; approve again")
    assert state(root) == before and production(root) is None and deployed(root) == ["staging-1"]
    return str(doc["refused"])


@pytest.mark.parametrize(("posted", "address", "expected"), [
    (("mallory", APPROVE), "{page}/pull/2#issuecomment-{id}", "that comment is by mallory, not maya"),
    (("maya", "/mlops-bot approve v7 production"), "{page}/pull/2#issuecomment-{id}",
     "that comment says `/mlops-bot approve v7 production`, not `/mlops-bot approve v1 production`"),
    (("maya", "LGTM, ship it"), "{page}/pull/2#issuecomment-{id}", "that comment says no /mlops-bot command"),
    (("maya", APPROVE), "{page}/pull/2#issuecomment-424242",
     "is no comment on this repository's pull/merge requests or issues"),
    (("maya", APPROVE), "https://github.com/mallory/Hello-World/pull/2#issuecomment-{id}",
     "is no comment on this repository's pull/merge requests or issues"),
])
def test_a_forged_comment_approval_is_refused_on_github(
        github: GitHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        posted: tuple[str, str], address: str, expected: str) -> None:
    root = staged(tmp_path / "p")
    github.add_collaborator("maya", "maintain")
    github.add_collaborator("mallory", "write")
    comment_id = github.add_comment(2, posted[1], posted[0])
    forged = Approval("maya", "comment", address.format(page=f"{github.origin}/{REPO}", id=comment_id), "maintain",
                      "2024-01-01T00:00:00+00:00")
    write_tag(root, forged)
    apply_env(monkeypatch, github_env(github, tmp_path / "runner"))
    assert expected in refused_unchanged(root, capsys, "GitHub", forged)


def test_a_maintainers_comment_edited_by_a_writer_is_no_approval(
        github: GitHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = staged(tmp_path / "p")
    github.add_collaborator("maya", "maintain")
    github.add_collaborator("mallory", "write")
    comment_id = github.add_comment(2, "/mlops-bot approve v3 production", "maya")  # maya approved another version
    github.edit_comment(comment_id, APPROVE)  # GitHub lets anybody with write access edit it
    forged = Approval("maya", "comment", f"{github.origin}/{REPO}/pull/2#issuecomment-{comment_id}", "maintain",
                      "2024-01-01T00:00:00+00:00")
    write_tag(root, forged)
    apply_env(monkeypatch, github_env(github, tmp_path / "runner"))
    refusal = refused_unchanged(root, capsys, "GitHub", forged)
    assert "that comment was edited after maya wrote it; an approval is a new comment" in refusal


@pytest.mark.parametrize(("posted", "address", "expected"), [
    (("mallory", APPROVE), "{page}/-/merge_requests/7#note_{id}", "that comment is by mallory, not maya"),
    (("maya", "/mlops-bot approve v1 staging"), "{page}/-/merge_requests/7#note_{id}",
     "that comment says `/mlops-bot approve v1 staging`"),
    (("maya", APPROVE), "{page}/-/merge_requests/7#note_424242", "is no comment on this repository's"),
    (("maya", APPROVE), "{page}/-/merge_requests/8#note_{id}", "is no comment on this repository's"),
])
def test_a_forged_comment_approval_is_refused_on_gitlab(
        gitlab: GitLabServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        posted: tuple[str, str], address: str, expected: str) -> None:
    root = staged(tmp_path / "p", pull_request="7")
    gitlab.add_merge_request(8)
    gitlab.add_member("maya", "maintainer")
    gitlab.add_member("mallory", "developer")
    note_id = gitlab.add_note(7, posted[1], posted[0])
    forged = Approval("maya", "comment", address.format(page=f"{gitlab.origin}/group/project", id=note_id),
                      "maintain", "2024-01-01T00:00:00+00:00")
    write_tag(root, forged)
    apply_env(monkeypatch, gitlab_env(gitlab))
    assert expected in refused_unchanged(root, capsys, "GitLab", forged)


def test_a_comment_approval_recorded_by_chatops_is_confirmed_and_promotes(
        github: GitHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = staged(tmp_path / "p")
    github.add_collaborator("maya", "maintain")
    comment_id = github.add_comment(2, f"Looks good.\n{APPROVE}", "maya")
    url = f"{github.origin}/{REPO}/pull/2#issuecomment-{comment_id}"
    env = github_env(github, tmp_path / "runner", event="issue_comment")
    with Project(root, env=env) as project:
        comment = Comment("github", str(comment_id), f"Looks good.\n{APPROVE}", "maya", False, url, 2, True, "created")
        assert handle(project, open_forge(read_context(env), env), comment, "workflow").outcome == "done"
    apply_env(monkeypatch, github_env(github, tmp_path / "runner"))
    before = len(github.seen)
    code, doc = promote(root, capsys)
    assert (code, doc["promoted"]) == (0, True) and production(root) == "1", doc
    assert deployed(root) == ["staging-1", "production-1"]
    # what the confirmation cost: the comment and the approver's role, read once each
    assert [s.operation for s in github.seen[before:]] == ["issues/get-comment",
                                                           "repos/get-collaborator-permission-level"]


def test_a_note_approval_on_gitlab_is_confirmed_and_promotes(
        gitlab: GitLabServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = staged(tmp_path / "p", pull_request="7")
    gitlab.add_member("maya", "maintainer")
    note_id = gitlab.add_note(7, APPROVE, "maya")
    write_tag(root, Approval("maya", "comment", f"{gitlab.origin}/group/project/-/merge_requests/7#note_{note_id}",
                             "maintain", "2024-01-01T00:00:00+00:00"))
    apply_env(monkeypatch, gitlab_env(gitlab))
    before = len(gitlab.seen)
    code, doc = promote(root, capsys)
    assert (code, doc["promoted"]) == (0, True) and production(root) == "1", doc
    assert [s.operation for s in gitlab.seen[before:]] == ["notes.get", "users.list", "members.all_get"]


def test_an_approver_whose_role_dropped_no_longer_counts(
        github: GitHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = staged(tmp_path / "p")
    github.add_collaborator("maya", "maintain")
    comment_id = github.add_comment(2, APPROVE, "maya")
    genuine = Approval("maya", "comment", f"{github.origin}/{REPO}/pull/2#issuecomment-{comment_id}", "maintain",
                       "2024-01-01T00:00:00+00:00")
    write_tag(root, genuine)
    github.add_collaborator("maya", "write")  # since the approval, maya's role was lowered
    apply_env(monkeypatch, github_env(github, tmp_path / "runner"))
    refusal = refused_unchanged(root, capsys, "GitHub", genuine)
    assert "maya's role here is now write, and production needs maintain" in refusal


def test_a_withdrawn_review_no_longer_counts_and_a_standing_one_replaces_it(
        github: GitHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = staged(tmp_path / "p", via="review")
    github.add_collaborator("maya", "maintain")
    github.add_collaborator("max", "maintain")
    review = github.add_review(2, "maya", "APPROVED")
    approval = Approval("maya", "review", f"{github.origin}/{REPO}/pull/2#pullrequestreview-{review}", "maintain",
                        "2024-01-01T00:00:00+00:00")
    write_tag(root, approval)  # as the bot recorded it when maya approved
    github.add_review(2, "maya", "CHANGES_REQUESTED")  # maya withdrew it since
    apply_env(monkeypatch, github_env(github, tmp_path / "runner"))
    refusal = refused_unchanged(root, capsys, "GitHub", approval)
    assert "maya does not approve pull request #2 now" in refusal

    github.add_review(2, "max", "APPROVED")  # another maintainer's standing approval is found and recorded instead
    code, doc = promote(root, capsys)
    assert (code, doc["promoted"]) == (0, True) and production(root) == "1", doc
    registry = open_registry("local", root)
    try:
        recorded = read_approval(registry.get_model_version("demo", "1"), "production")
    finally:
        registry.close()
    assert recorded is not None and (recorded.by, recorded.via) == ("max", "review")


def test_an_environment_approval_is_read_again_from_its_run(
        github: GitHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = staged(tmp_path / "p", via="environment")
    github.add_collaborator("maya", "maintain")
    github.add_run(9001)  # this job's run: nobody approved it
    github.add_run_approval(8800, "maya", ["staging"])  # an earlier run, approved for another environment
    forged = Approval("maya", "environment", f"{github.origin}/{REPO}/actions/runs/8800", "maintain",
                      "2024-01-01T00:00:00+00:00")
    write_tag(root, forged)
    apply_env(monkeypatch, github_env(github, tmp_path / "runner"))
    refusal = refused_unchanged(root, capsys, "GitHub", forged)
    assert "maya did not approve run 8800's deployment to the `production` environment" in refusal
    github.add_run_approval(8800, "maya", ["production"])  # a real approval, but of another run (another version?)
    refusal = refused_unchanged(root, capsys, "GitHub", forged)
    assert "that deployment review was given to workflow run 8800, not to this run (9001)" in refusal
    github.add_run_approval(9001, "maya", ["production"])  # GitHub asked the reviewers for this run
    code, doc = promote(root, capsys)
    assert (code, doc["promoted"]) == (0, True) and production(root) == "1", doc


def test_outside_ci_without_forge_settings_the_record_is_trusted(github: GitHubServer, tmp_path: Path) -> None:
    root = staged(tmp_path / "p")
    unconfirmable = Approval("maya", "comment", "https://forge.example/o/r/pull/2#issuecomment-1", "maintain",
                             "2024-01-01T00:00:00+00:00")
    write_tag(root, unconfirmable)
    served = {"MLOPS_BOT_FORGE": "github", "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": github.api_url,
              "GITHUB_TOKEN": APP_TOKEN, "MLOPS_BOT_WRITE_INTERVAL": "0"}
    # a forge named outside CI (serve, a terminal with MLOPS_BOT_FORGE) is asked
    with Project(root, env=served) as project, pytest.raises(StageRefused, match="is no comment on this repository's"):
        promote_version(project, "1", "production", ALICE)
    assert production(root) is None
    with Project(root, env={}) as project:  # a terminal without forge settings: its user can write the registry
        promotion, _ = promote_version(project, "1", "production", ALICE)
    assert promotion.promoted and production(root) == "1"
    assert github.calls("issues/get-comment") == []  # the address was not this repository's: nothing asked

