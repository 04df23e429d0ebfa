"""forge_approval against the local GitHub and GitLab servers: a stage's approval found in the run's deployment
reviews or the version's pull request reviews, counted only from a role at least the stage's permission."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.config.model import ApprovalRule, Stage
from mlops_bot.errors import UsageError
from mlops_bot.flows.approvers import forge_approval
from mlops_bot.flows.project import Project
from mlops_bot.lifecycle.approvals import Approval
from mlops_bot.lifecycle.stages import StageRefused
from mlops_bot.registry import tags
from mlops_bot.registry.base import ModelVersion, Registry
from tests.helpers.ci_env import REPO, github_env, gitlab_env
from tests.servers.github_server import GitHubServer
from tests.servers.gitlab_server import GitLabServer

Factory = Callable[..., Registry]


def stage(permission: str = "maintain", via: tuple[str, ...] = ("environment", "review", "comment"),
          environment: str | None = None) -> Stage:
    return Stage("production", "previous-production", requires="staging",
                 approval=ApprovalRule(permission, via, environment))


def version(registry_factory: Factory, pull_request: str = "2") -> ModelVersion:
    registry = registry_factory("local")
    run = registry.create_run(registry.get_or_create_experiment("demo").experiment_id, "train")
    registry.get_or_create_registered_model("demo")
    lineage = {tags.PULL_REQUEST: pull_request} if pull_request else {}
    return registry.create_model_version("demo", f"runs:/{run.run_id}/model", run.run_id, lineage)


@pytest.fixture
def on_github(github: GitHubServer, tmp_path: Path) -> Project:
    return Project(tmp_path, env=github_env(github, tmp_path / "runner"))


def test_a_maintainers_environment_approval_counts(github: GitHubServer, on_github: Project,
                                                   registry_factory: Factory) -> None:
    github.add_collaborator("max", "maintain")
    github.add_run_approval(9001, "max", ["production"])
    found = forge_approval(on_github, version(registry_factory), stage())
    assert found == Approval("max", "environment", f"{github.origin}/{REPO}/actions/runs/9001", "maintain")
    assert github.calls("pulls/list-reviews") == []  # the first mechanism sufficed


def test_a_writers_approval_is_refused_and_said_so(github: GitHubServer, on_github: Project,
                                                   registry_factory: Factory, capsys: pytest.CaptureFixture[str]
                                                   ) -> None:
    github.add_collaborator("wes", "write")
    github.add_run_approval(9001, "wes", ["production"])
    github.add_review(2, "wes", "APPROVED")
    assert forge_approval(on_github, version(registry_factory), stage()) is None
    err = capsys.readouterr().err
    assert "wes approved (environment) but has role write; production needs maintain" in err
    assert "wes approved (review) but has role write" in err
    assert len(github.calls("repos/get-collaborator-permission-level")) == 1  # the role is asked once


def test_a_review_approval_counts_when_the_environment_holds_none(github: GitHubServer, on_github: Project,
                                                                  registry_factory: Factory) -> None:
    github.add_collaborator("ada", "admin")
    github.add_run_approval(9001, "ada", ["staging"])  # another environment
    github.add_run_approval(9001, "ada", ["production"], state="rejected")
    review = github.add_review(2, "ada", "APPROVED")
    found = forge_approval(on_github, version(registry_factory), stage())
    assert found == Approval("ada", "review", f"{github.origin}/{REPO}/pull/2#pullrequestreview-{review}", "admin")


def test_the_named_environment_and_the_mechanisms_listed_are_the_ones_asked(
        github: GitHubServer, on_github: Project, registry_factory: Factory) -> None:
    github.add_collaborator("max", "maintain")
    github.add_run_approval(9001, "max", ["prod-eu"])
    github.add_review(2, "max", "APPROVED")
    v = version(registry_factory)
    assert forge_approval(on_github, v, stage(environment="prod-eu")).via == "environment"  # type: ignore[union-attr]
    assert forge_approval(on_github, v, stage(via=("review",))).via == "review"  # type: ignore[union-attr]
    before = len(github.seen)
    assert forge_approval(on_github, v, stage(via=("comment",))) is None
    assert forge_approval(on_github, v, Stage("staging", "previous-staging")) is None  # no approval needed
    assert len(github.seen) == before  # neither asked the forge anything


def test_nothing_approved_is_none(github: GitHubServer, on_github: Project, registry_factory: Factory) -> None:
    github.add_run(9001)
    github.add_collaborator("max", "maintain")
    github.add_review(2, "max", "COMMENTED")
    assert forge_approval(on_github, version(registry_factory), stage()) is None
    assert forge_approval(on_github, version(registry_factory, pull_request=""), stage()) is None


def test_a_token_without_actions_read_is_told_what_to_grant(github: GitHubServer, tmp_path: Path,
                                                            registry_factory: Factory) -> None:
    token = "ghs_" + "Rr5" * 12
    github.add_account(token, "github-actions[bot]", kind="installation", denied=("actions/get-reviews-for-run",))
    github.add_run(9001)
    project = Project(tmp_path, env=github_env(github, tmp_path / "runner", token=token))
    with pytest.raises(UsageError, match=r"actions/runs/9001/approvals: .*grant it `actions: read`"):
        forge_approval(project, version(registry_factory), stage())


def test_a_token_without_pull_request_or_metadata_read_is_told_what_to_grant(
        github: GitHubServer, tmp_path: Path, registry_factory: Factory) -> None:
    reviews, roles = "ghs_" + "Pq6" * 12, "ghs_" + "Mq7" * 12
    github.add_account(reviews, "github-actions[bot]", kind="installation", denied=("pulls/list-reviews",))
    github.add_account(roles, "github-actions[bot]", kind="installation",
                       denied=("repos/get-collaborator-permission-level",))
    github.add_review(2, "max", "APPROVED")
    v = version(registry_factory)
    for token, grant in [(reviews, "`pull-requests: read`"), (roles, "`metadata: read`")]:
        project = Project(tmp_path, env=github_env(github, tmp_path / "runner", token=token))
        with pytest.raises(UsageError, match=f"grant it {grant}"):
            forge_approval(project, v, stage(via=("review",)))


def test_on_gitlab_the_merge_requests_approvals_count(gitlab: GitLabServer, tmp_path: Path,
                                                      registry_factory: Factory) -> None:
    gitlab.add_member("dev", "developer")
    gitlab.add_member("mai", "maintainer")
    gitlab.approve(7, "dev")
    gitlab.approve(7, "mai")
    project = Project(tmp_path, env={**gitlab_env(gitlab), "GITHUB_RUN_ID": "9001"})  # a stray variable
    found = forge_approval(project, version(registry_factory, pull_request="7"), stage())
    assert found == Approval("mai", "review", f"{gitlab.origin}/group/project/-/merge_requests/7", "maintain")


def test_outside_ci_there_is_no_forge_to_ask(tmp_path: Path, registry_factory: Factory) -> None:
    project = Project(tmp_path, env={"GITHUB_RUN_ID": "9001"})
    assert forge_approval(project, version(registry_factory), stage()) is None


def recorded(registry_factory: Factory, approval: Approval) -> ModelVersion:
    """A version whose production approval is on record, as the bot (or anybody with registry write access)
    wrote it."""
    registry = registry_factory("local")
    run = registry.create_run(registry.get_or_create_experiment("demo").experiment_id, "train")
    registry.get_or_create_registered_model("demo")
    v = registry.create_model_version("demo", f"runs:/{run.run_id}/model", run.run_id, {tags.PULL_REQUEST: "2"})
    registry.set_model_version_tag("demo", v.version, tags.approval_tag("production"), approval.to_json())
    return registry.get_model_version("demo", v.version)


def test_a_confirmed_record_is_the_answer_and_nothing_else_is_searched(github: GitHubServer, on_github: Project,
                                                                       registry_factory: Factory) -> None:
    github.add_collaborator("maya", "maintain")
    comment = github.add_comment(2, "/mlops-bot approve v1 production", "maya")
    approval = Approval("maya", "comment", f"{github.origin}/{REPO}/pull/2#issuecomment-{comment}", "maintain",
                        "2024-01-01T00:00:00+00:00")
    assert forge_approval(on_github, recorded(registry_factory, approval), stage()) == approval
    assert [s.operation for s in github.seen] == ["issues/get-comment", "repos/get-collaborator-permission-level"]


def test_a_record_not_confirmed_gives_way_to_an_approval_the_forge_holds_now(
        github: GitHubServer, on_github: Project, registry_factory: Factory) -> None:
    github.add_collaborator("max", "maintain")
    review = github.add_review(2, "max", "APPROVED")
    forged = Approval("max", "comment", f"{github.origin}/{REPO}/pull/2#issuecomment-5", "maintain")
    found = forge_approval(on_github, recorded(registry_factory, forged), stage(via=("review", "comment")))
    assert found == Approval("max", "review", f"{github.origin}/{REPO}/pull/2#pullrequestreview-{review}", "maintain")
    with pytest.raises(StageRefused, match=r"is not confirmed by GitHub: .*issuecomment-5 is no comment on this "):
        forge_approval(on_github, recorded(registry_factory, forged), stage(via=("comment",)))


def test_a_token_that_may_not_read_the_approvals_comment_is_told_what_to_grant(
        github: GitHubServer, tmp_path: Path, registry_factory: Factory) -> None:
    token = "ghs_" + "Cm8" * 12
    github.add_account(token, "github-actions[bot]", kind="installation", denied=("issues/get-comment",))
    comment = github.add_comment(2, "/mlops-bot approve v1 production", "maya")
    approval = Approval("maya", "comment", f"{github.origin}/{REPO}/pull/2#issuecomment-{comment}", "maintain")
    project = Project(tmp_path, env=github_env(github, tmp_path / "runner", token=token))
    with pytest.raises(UsageError, match=r"issues/comments/\d+: .*grant it `issues: read` or `pull-requests: read`"):
        forge_approval(project, recorded(registry_factory, approval), stage(via=("comment",)))
