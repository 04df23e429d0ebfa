"""workflows/promote-stage.yml end to end: `act` (host mode, offline) runs it for a real workflow_dispatch payload in
a git repository holding the quickstart with two stages (production requires the champion stage and an approval
through the `production` deployment environment), against the GitHub stand-in (roles and the run's deployment
reviews, through GitHub's API description) and the real mlflow server. GitHub itself holds the job until the
environment's reviewers approve; act does not, so the stand-in's review history of the run says who approved, and
the bot must read it there and check the approver's role."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.config import load_config
from mlops_bot.flows.project import Project
from mlops_bot.flows.promote import promote_version
from mlops_bot.lifecycle.approvals import read_approval
from mlops_bot.lifecycle.history import Mover, read_moves
from mlops_bot.registry import alias_holder, open_registry
from tests.e2e.runners import Run, run_act
from tests.helpers.e2e import ROOT, Repo, git, make_repo
from tests.helpers.registries import add_version
from tests.servers.github_server import GitHubServer
from tests.servers.mlflow_server import MlflowServer

pytestmark = [pytest.mark.e2e, pytest.mark.mlflow]

EVENTS = ROOT / "tests" / "fixtures" / "github-events"
REPOSITORY = "Codertocat/Hello-World"
TOKEN = "ghs_" + "St4g3s" * 6  # the workflow's GITHUB_TOKEN (an installation token)
RUN_ID = "7301"  # the workflow run act is told it is (GITHUB_RUN_ID)
MAINTAINER, WRITER = "maya", "wes"
STAGES = """promote:
  stages:
    - {alias: champion, previous_alias: previous-champion, criteria: [{metric: accuracy, threshold: 0.5}]}
    - alias: production
      requires: champion
      criteria: [{metric: accuracy, threshold: 0.5}]
      approval: {permission: maintain, via: [environment]}
"""

Act = Callable[[str], Run]


@pytest.fixture(scope="module")
def github() -> Iterator[GitHubServer]:
    server = GitHubServer(REPOSITORY).start()
    server.add_account(TOKEN, "github-actions[bot]", kind="installation")
    server.add_collaborator(MAINTAINER, "maintain")
    server.add_collaborator(WRITER, "write")
    server.add_run(int(RUN_ID))
    yield server
    server.stop()
    assert server.violations == [], "the bot broke GitHub's API contract"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    workflow = {".github/workflows/promote-stage.yml": (ROOT / "workflows" / "promote-stage.yml").read_text()}
    repo = make_repo(tmp_path_factory.mktemp("stage-e2e") / "repo", "master", f"https://github.com/{REPOSITORY}.git",
                     workflow)
    config = repo.path / "ml.yaml"
    text, replaced = re.subn(r"^promote: .*$", STAGES.rstrip("\n"), config.read_text(), flags=re.M)
    assert replaced == 1, "the quickstart's promote: line changed shape; update this test"
    config.write_text(text)
    git(repo.path, "commit", "--quiet", "--all", "--message", "stages")
    return repo


@pytest.fixture(scope="module")
def version(project: Repo, mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A version that reached the champion stage through the bot, as a merge leaves it."""
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    config = load_config(project.path / "ml.yaml", env=env)
    registry = open_registry(mlflow_server.uri, project.path)
    try:
        number = add_version(registry, config, tmp_path_factory.mktemp("runs"))
        promotion, _ = promote_version(Project.of(config, env=env, opener=lambda: registry), number, "champion",
                                       Mover(by="merge", where="https://github.example/runs/1"), deploy=False)
        assert promotion.promoted
        return number
    finally:
        registry.close()


@pytest.fixture(scope="module")
def act(tmp_path_factory: pytest.TempPathFactory, project: Repo, github: GitHubServer, mlflow_server: MlflowServer,
        bot_source: Path, pip_offline: dict[str, str]) -> Act:
    cache = tmp_path_factory.mktemp("act-cache")

    def run(version: str) -> Run:
        payload: dict[str, Any] = copy.deepcopy(json.loads((EVENTS / "workflow_dispatch-payload.json").read_text()))
        payload["inputs"] = {"version": version, "stage": "production"}
        payload["repository"]["full_name"] = REPOSITORY
        env = {"GITHUB_API_URL": github.api_url, "GITHUB_RUN_ID": RUN_ID, "MLOPS_BOT_WRITE_INTERVAL": "0",
               "MLOPS_BOT_RETRY_SECONDS": "5", **pip_offline}
        return run_act(project.path, "workflow_dispatch", payload, "promote-stage.yml", action=bot_source,
                       cache=cache, env=env, secrets={"GITHUB_TOKEN": TOKEN},
                       variables={"MLFLOW_TRACKING_URI": mlflow_server.uri})

    return run


def production(project: Repo, uri: str) -> tuple[str | None, Any]:
    registry = open_registry(uri, project.path)
    try:
        holder = alias_holder(registry, project.model, "production")
        return (holder.version if holder else None), holder
    finally:
        registry.close()


def test_a_writers_environment_approval_moves_nothing(act: Act, project: Repo, version: str, github: GitHubServer,
                                                      mlflow_server: MlflowServer) -> None:
    github.add_run_approval(int(RUN_ID), WRITER, ["production"])
    github.add_run_approval(int(RUN_ID), MAINTAINER, ["staging-eu"])  # another environment's approval
    run = act(version)
    assert run.returncode != 0, run.explain()
    assert f"{WRITER} approved (environment) but has role write; production needs maintain" in run.output, \
        run.explain()
    assert any(f"v{version} needs approval for production" in e for e in run.annotations("error")), run.explain()
    assert production(project, mlflow_server.uri)[0] is None


def test_a_maintainers_environment_approval_promotes_and_is_recorded(act: Act, project: Repo, version: str,
                                                                      github: GitHubServer,
                                                                      mlflow_server: MlflowServer) -> None:
    github.add_run_approval(int(RUN_ID), MAINTAINER, ["production"])
    run = act(version)
    assert run.returncode == 0, run.explain()
    number, holder = production(project, mlflow_server.uri)
    assert number == version
    approval = read_approval(holder, "production")
    assert approval is not None and (approval.by, approval.via, approval.role) == (MAINTAINER, "environment",
                                                                                   "maintain")
    assert approval.where.endswith(f"/{REPOSITORY}/actions/runs/{RUN_ID}")
    registry = open_registry(mlflow_server.uri, project.path)
    try:
        moves = [m for m in read_moves(registry, project.model) if m.alias == "production"]
    finally:
        registry.close()
    assert [(m.version, m.approval["by"] if m.approval else None) for m in moves] == [(version, MAINTAINER)]
