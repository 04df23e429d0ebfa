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
