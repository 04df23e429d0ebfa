"""workflows/chatops.yml end to end: `act` (host mode, offline) runs it for real issue_comment payloads (derived
from octokit's example) in a git repository holding the quickstart with two stages, against the GitHub stand-in
(roles, pull requests, replies through GitHub's API description) and the real mlflow server. The action comes from
a copy of this repository, as `uses:` would fetch it (its action.yml must accept `command: chatops` and pass the
chatops-* outputs on)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.config import load_config
from mlops_bot.registry import alias_holder, open_registry, tags
from tests.chatops.builders import comment_payload
from tests.e2e.runners import Run, run_act
from tests.helpers.e2e import ROOT, Repo, git, make_repo
from tests.helpers.registries import add_version
from tests.servers.github_server import GitHubServer
from tests.servers.mlflow_server import MlflowServer

pytestmark = [pytest.mark.e2e, pytest.mark.mlflow]

REPOSITORY = "Codertocat/Hello-World"  # the repository of the fixture payloads
PR = 2
TOKEN = "ghs_" + "Ch4t0p" * 6  # the workflow's GITHUB_TOKEN (an installation token)
MAINTAINER, READER = "Codertocat", "reader"
STAGES = """promote:
  stages:
    - {alias: champion, previous_alias: previous-champion}
    - alias: production
      requires: champion
      approval: {permission: maintain, via: [comment]}
chatops: {permission: write}
"""

Act = Callable[[dict[str, Any]], Run]


@pytest.fixture(scope="module")
def github() -> Iterator[GitHubServer]:
    server = GitHubServer(REPOSITORY).start()
    server.add_account(TOKEN, "github-actions[bot]", kind="installation")
    server.add_collaborator(MAINTAINER, "maintain")
    server.add_collaborator(READER, "read")
    yield server
    server.stop()
    assert server.violations == [], "the bot broke GitHub's API contract"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, github: GitHubServer) -> Repo:
    """The quickstart with stages and `chatops:` on its default branch, and workflows/chatops.yml."""
    workflow = {".github/workflows/chatops.yml": (ROOT / "workflows" / "chatops.yml").read_text()}
    repo = make_repo(tmp_path_factory.mktemp("chatops-e2e") / "repo", "master",
                     f"https://github.com/{REPOSITORY}.git", workflow)
    config = repo.path / "ml.yaml"
    text, replaced = re.subn(r"^promote: .*$", STAGES.rstrip("\n"), config.read_text(), flags=re.M)
    assert replaced == 1, "the quickstart's promote: line changed shape; update this test"
    config.write_text(text)
    git(repo.path, "commit", "--quiet", "--all", "--message", "stages and chatops")
    github.add_pull(PR, head_sha="a" * 40)
    return Repo(repo.path, git(repo.path, "rev-parse", "HEAD"), repo.model)


@pytest.fixture(scope="module")
def version(project: Repo, mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A version registered on the tracking server, as a merge's promote leaves one (not yet at any stage)."""
    config = load_config(project.path / "ml.yaml", env={"MLFLOW_TRACKING_URI": mlflow_server.uri})
    registry = open_registry(mlflow_server.uri, project.path)
    try:
        return add_version(registry, config, tmp_path_factory.mktemp("runs"))
    finally:
        registry.close()


@pytest.fixture(scope="module")
def act(tmp_path_factory: pytest.TempPathFactory, project: Repo, github: GitHubServer, mlflow_server: MlflowServer,
        bot_source: Path, pip_offline: dict[str, str]) -> Act:
    cache = tmp_path_factory.mktemp("act-cache")

    def run(payload: dict[str, Any]) -> Run:
        env = {"GITHUB_API_URL": github.api_url, "MLOPS_BOT_WRITE_INTERVAL": "0", "MLOPS_BOT_RETRY_SECONDS": "5",
               **pip_offline}
        return run_act(project.path, "issue_comment", payload, "chatops.yml", action=bot_source, cache=cache,
                       env=env, secrets={"GITHUB_TOKEN": TOKEN}, variables={"MLFLOW_TRACKING_URI": mlflow_server.uri})

    return run


def version_tags(project: Repo, uri: str, number: str) -> dict[str, str]:
    registry = open_registry(uri, project.path)
    try:
        return dict(registry.get_model_version(project.model, number).tags)
    finally:
        registry.close()


def test_a_maintainers_approval_is_recorded_on_the_version(act: Act, project: Repo, version: str,
                                                           github: GitHubServer, mlflow_server: MlflowServer) -> None:
    payload = comment_payload(f"LGTM\n/mlops-bot approve v{version} production", MAINTAINER, number=PR,
                              comment_id=9101)
    run = act(payload)
    assert run.returncode == 0, run.explain()
    assert run.echoed("command") == ["approve"], run.explain()
    assert run.echoed("ref") == [""]  # nothing for the job to check out: the PR's code never ran
    approval = json.loads(version_tags(project, mlflow_server.uri, version)[tags.approval_tag("production")])
    assert (approval["by"], approval["via"], approval["role"]) == (MAINTAINER, "comment", "maintain")
    assert approval["where"] == payload["comment"]["html_url"]
    (reply,) = [c for c in github.comments_on(PR) if "approval" in c["body"]]
    assert reply["login"] == "github-actions[bot]" and f"@{MAINTAINER} recorded your approval of v{version}" in \
        reply["body"]


def test_a_readers_promote_is_refused_politely_and_moves_nothing(act: Act, project: Repo, version: str,
                                                                 github: GitHubServer,
                                                                 mlflow_server: MlflowServer) -> None:
    run = act(comment_payload(f"/mlops-bot promote v{version} champion", READER, number=PR, comment_id=9102))
    assert run.returncode == 0, run.explain()
    assert run.echoed("command") == ["promote"], run.explain()
    (reply,) = [c for c in github.comments_on(PR) if f"@{READER}" in c["body"]]
    assert "sorry, only people with at least write access" in reply["body"] and "your role here: read" in reply["body"]
    registry = open_registry(mlflow_server.uri, project.path)
    try:
        assert alias_holder(registry, project.model, "champion") is None
    finally:
        registry.close()
    assert not [k for k in version_tags(project, mlflow_server.uri, version) if k.startswith(tags.MOVE_PREFIX)]


def test_a_comment_without_a_command_starts_no_job(act: Act, github: GitHubServer) -> None:
    before = len(github.comments_on(PR))
    run = act(comment_payload("Thanks, I will look at /mlops-bot later.", MAINTAINER, number=PR, comment_id=9103))
    assert run.returncode == 0, run.explain()
    assert "Answer the command" not in run.output and run.echoed("command") == []  # the job's `if:` skipped it
    assert len(github.comments_on(PR)) == before
