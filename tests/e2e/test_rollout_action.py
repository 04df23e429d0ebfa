"""workflows/rollout.yml end to end: `act` (host mode, offline) runs it for a workflow_dispatch payload in a git
repository holding the quickstart, whose `gitops` target rolls versions out on a KServe manifest in a real bare git
repository (canaryTrafficPercent commits), against the real mlflow server. The test process deploys v1, then hands
v2's rollout off after its first step (10 %); the scheduled workflow must continue it from the state on the version
in the registry alone: hold while the step's hold runs, finish at 100 once it is over, then find nothing to do."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_bot.config import load_config
from mlops_bot.config.model import Config
from mlops_bot.deploy import DeployOptions, deploy_all
from mlops_bot.deploy.rollout.state import RolloutState, read_state
from mlops_bot.registry import open_registry, tags
from tests.e2e.runners import Run, run_act
from tests.helpers.e2e import ROOT, Repo, git, make_repo
from tests.helpers.gitops import Remote
from tests.helpers.registries import add_version
from tests.servers.mlflow_server import MlflowServer

pytestmark = [pytest.mark.e2e, pytest.mark.mlflow]

EVENTS = ROOT / "tests" / "fixtures" / "github-events"
REPOSITORY = "Codertocat/Hello-World"
TARGET = "prod"
HOLD_S = 6  # the 10 % step's hold: longer than an act run with a warm cache (about 1 s) takes
QUICKSTART_DEPLOY = "deploy:\n  - name: local\n    type: command\n    cmd: [python, deploy_local.py]\n"

Act = Callable[[], Run]


def gitops_deploy(bare: Path) -> str:
    """The deploy: section of ml.yaml: a KServe manifest in `bare`, rolled out 10 % then 100 %, handed off."""
    return (f"deploy:\n  - name: {TARGET}\n    type: gitops\n    repo: {json.dumps(str(bare))}\n"
            "    file: deploy/inference.yaml\n"
            '    set: {spec.predictor.model.storageUri: "{model_uri}"}\n'
            f"    rollout: {{hand_off: true, interval: 1s, steps: [{{traffic: 10, hold: {HOLD_S}s}}, "
            "{traffic: 100}]}\n")


def make_project(root: Path, bare: Path) -> Repo:
    workflow = {".github/workflows/rollout.yml": (ROOT / "workflows" / "rollout.yml").read_text()}
    repo = make_repo(root / "repo", "master", f"https://github.com/{REPOSITORY}.git", workflow)
    config = repo.path / "ml.yaml"
    text = config.read_text()
    assert QUICKSTART_DEPLOY in text, "the quickstart's deploy: section changed shape; update this test"
    config.write_text(text.replace(QUICKSTART_DEPLOY, gitops_deploy(bare)))
    git(repo.path, "commit", "--quiet", "--all", "--message", "deploy through gitops with a rollout")
    return Repo(repo.path, git(repo.path, "rev-parse", "HEAD"), repo.model)


def dispatch_payload() -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((EVENTS / "workflow_dispatch-payload.json").read_text())
    payload.update(inputs={}, ref="refs/heads/master")
    payload["repository"].update(full_name=REPOSITORY, default_branch="master")
    return payload


def history(remote: Remote) -> list[tuple[str, Any]]:
    """(storageUri, canaryTrafficPercent) of each commit on the manifest repository's main after its seed."""
    found = []
    for sha in git(remote.bare, "rev-list", "--reverse", "main").split()[1:]:
        predictor = yaml.safe_load(remote.show(sha))["spec"]["predictor"]
        found.append((predictor["model"]["storageUri"], predictor.get("canaryTrafficPercent")))
    return found


def quiet(_: str) -> None:
    pass


def deploy(config: Config, uri: str, project: Repo, version: str, wait: bool | None = None) -> list[str]:
    registry = open_registry(uri, project.path)
    try:
        return [r.status for r in deploy_all(config, registry, version, DeployOptions(echo=quiet, wait=wait))]
    finally:
        registry.close()


def on_version(uri: str, project: Repo, version: str) -> tuple[RolloutState | None, str | None]:
    """The version's rollout state and deploy status for TARGET, as the registry holds them."""
    registry = open_registry(uri, project.path)
    try:
        found = registry.get_model_version(project.model, version)
    finally:
        registry.close()
    return read_state(found, TARGET), found.tags.get(tags.deploy_status(TARGET))


def assert_finished(remote: Remote, uris: tuple[str, str], tracking: str, project: Repo, version: str) -> None:
    """v1 then v2 at 10% then v2 at 100% in the manifest's history; v2's rollout completed on the registry."""
    first, second = uris
    assert history(remote) == [(first, 100), (second, 10), (second, 100)]
    message = remote.message()
    assert f"Model-URI: {second}" in message and "Canary-Traffic-Percent: 100" in message, message
    state, status = on_version(tracking, project, version)
    assert state is not None and state.phase == "completed" and state.traffic == 100, state
    assert status == "succeeded"


def test_the_scheduled_workflow_continues_a_handed_off_rollout_from_the_registry(
        tmp_path_factory: pytest.TempPathFactory, mlflow_server: MlflowServer, bot_source: Path,
        pip_offline: dict[str, str]) -> None:
    root = tmp_path_factory.mktemp("rollout-e2e")
    remote = Remote.create(root)
    project = make_project(root, remote.bare)
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    config = load_config(project.path / "ml.yaml", env=env)
    registry = open_registry(mlflow_server.uri, project.path)
    try:
        v1, v2 = (add_version(registry, config, tmp_path_factory.mktemp("runs")) for _ in range(2))
    finally:
        registry.close()
    cache = tmp_path_factory.mktemp("act-cache")

    def act() -> Run:
        return run_act(project.path, "workflow_dispatch", dispatch_payload(), "rollout.yml", action=bot_source,
                       cache=cache, env={"MLOPS_BOT_WRITE_INTERVAL": "0", "MLOPS_BOT_RETRY_SECONDS": "5",
                                         **pip_offline},
                       secrets={}, variables={"MLFLOW_TRACKING_URI": mlflow_server.uri})

    uri1, uri2 = (f"models:/{project.model}/{v}" for v in (v1, v2))
    # v1 is the target's first version: nothing served before, so it takes all traffic at once.
    assert deploy(config, mlflow_server.uri, project, v1) == ["succeeded"]
    assert history(remote) == [(uri1, 100)]
    idle = act()  # nothing in progress; this run also builds the action's venv in act's cache
    assert idle.returncode == 0, idle.explain()
    assert f"no rollout of {project.model} is in progress" in idle.output, idle.explain()

    started = time.monotonic()
    assert deploy(config, mlflow_server.uri, project, v2, wait=False) == ["rolling_out"]
    assert history(remote) == [(uri1, 100), (uri2, 10)]
    early = act()
    assert time.monotonic() - started < HOLD_S, f"act took longer than the {HOLD_S} s hold; raise HOLD_S"
    assert early.returncode == 0, early.explain()
    assert f"{TARGET}: rolling_out:" in early.output and "holding until" in early.output, early.explain()
    assert history(remote) == [(uri1, 100), (uri2, 10)], "a step was taken before its hold was over"
    state, _ = on_version(mlflow_server.uri, project, v2)
    assert state is not None and (state.phase, state.traffic) == ("step", 10)

    time.sleep(max(0.0, started + HOLD_S + 1 - time.monotonic()))
    done = act()
    assert done.returncode == 0, done.explain()
    assert f"{TARGET}: succeeded:" in done.output, done.explain()
    assert_finished(remote, (uri1, uri2), mlflow_server.uri, project, v2)

    after = act()
    assert after.returncode == 0, after.explain()
    assert f"no rollout of {project.model} is in progress" in after.output, after.explain()
    assert len(history(remote)) == 3
