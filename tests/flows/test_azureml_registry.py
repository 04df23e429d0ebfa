"""The bot against Azure ML's MLflow API as it really is (the stand-in built from Microsoft's published support
matrices and the azureml-mlflow plugin, tests/servers/azureml_mlflow.py): no aliases (the tag fallback holds the
champion), versions registered only from `runs:/<run-id>/<path>` sources and only as MLflow Models, and Entra
tokens that expire while the bot works. The whole loop runs through the real CLI as subprocesses."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.errors import InvalidParameter, NotFound
from mlops_bot.registry.mlflow.client import MlflowRegistry
from mlops_bot.registry.mlflow.http import RetryPolicy
from tests.helpers.pipeline_project import COUNTER_ENV, make_project
from tests.helpers.registries import TEST_RETRY
from tests.servers.azureml_mlflow import AzureMlflowServer

pytestmark = pytest.mark.slow  # CLI subprocesses


@pytest.fixture
def azure(azureml_mlflow: AzureMlflowServer, tmp_path: Path) -> Iterator[AzureMlflowServer]:
    """The session's stand-in, its current token in a file that `cat` prints (as `az account get-access-token`
    prints a valid one)."""
    token_file = tmp_path / "token"
    token_file.write_text(azureml_mlflow.token + "\n")
    azureml_mlflow.token_file = token_file
    yield azureml_mlflow
    azureml_mlflow.token_file, azureml_mlflow.rotate_after = None, None


def token_env(server: AzureMlflowServer) -> dict[str, str]:
    assert server.token_file is not None
    return {"MLFLOW_TRACKING_TOKEN_COMMAND": f"cat {shlex.quote(str(server.token_file))}"}


def registry(server: AzureMlflowServer) -> MlflowRegistry:
    return MlflowRegistry(server.tracking_uri, token_env(server), retry=RetryPolicy(**TEST_RETRY))


def run_with_model(reg: MlflowRegistry, tmp_path: Path, mlmodel: bool = True) -> str:
    experiment = reg.get_or_create_experiment(f"az-{tmp_path.name}")
    run = reg.create_run(experiment.experiment_id)
    model = tmp_path / f"model-{run.run_id}"
    model.mkdir(parents=True)
    (model / "model.pkl").write_bytes(b"weights")
    if mlmodel:
        (model / "MLmodel").write_text("flavors:\n  python_function: {loader_module: mlflow.sklearn}\n")
    reg.upload_artifacts(run.run_id, model, "model")
    reg.update_run(run.run_id, "FINISHED")
    return run.run_id


def creates(server: AzureMlflowServer) -> list[tuple[str, int]]:
    return [(str(s.body.get("source")), s.status) for s in server.calls("POST model-versions/create")]


def test_a_version_is_registered_from_a_runs_source_once(azure: AzureMlflowServer, tmp_path: Path) -> None:
    name = f"az-model-{tmp_path.name[-12:]}"
    first = registry(azure)
    run_id = run_with_model(first, tmp_path)
    uri = first.get_run(run_id).artifact_uri
    before = len(creates(azure))
    first.get_or_create_registered_model(name)
    version = first.create_model_version(name, f"{uri}/model", run_id)
    assert (version.version, version.source) == ("1", f"runs:/{run_id}/model")
    # learned from the refusal: a file:// (not runs:/) source is refused once, then the runs:/ form is sent
    assert creates(azure)[before:] == [(f"{uri}/model", 400), (f"runs:/{run_id}/model", 200)]
    assert first.create_model_version(name, f"{uri}/model", run_id) == version
    again = registry(azure)  # a re-run in another process: finds it in either form, registers nothing
    assert again.create_model_version(name, f"{uri}/model", run_id).version == "1"
    assert len(creates(azure)) == before + 2
    assert not first.capabilities.aliases  # no alias API: the champion is a version tag
    first.set_alias(name, "champion", "1")
    champion = again.get_version_by_alias(name, "champion")
    assert champion is not None and champion.version == "1"
    assert azure.violations == []


def test_a_model_without_mlmodel_is_refused_clearly_and_nothing_registered(azure: AzureMlflowServer,
                                                                          tmp_path: Path) -> None:
    name = f"az-plain-{tmp_path.name[-12:]}"
    reg = registry(azure)
    run_id = run_with_model(reg, tmp_path, mlmodel=False)
    reg.get_or_create_registered_model(name)
    with pytest.raises(InvalidParameter) as caught:
        reg.create_model_version(name, f"{reg.get_run(run_id).artifact_uri}/model", run_id)
    message = str(caught.value)
    assert azure.tracking_uri + "/api/2.0/mlflow/model-versions/create" in message
    assert "no MLmodel file" in message and "mlflow.<flavor>.save_model" in message and "\n" not in message
    assert reg.search_model_versions(name) == []


def test_a_listing_with_gaps_and_an_expired_token_mid_registration(azure: AzureMlflowServer, tmp_path: Path) -> None:
    name = f"az-gaps-{tmp_path.name[-12:]}"
    reg = registry(azure)
    run_ids = [run_with_model(reg, tmp_path / str(i)) for i in range(3)]
    reg.get_or_create_registered_model(name)
    for run_id in run_ids:
        reg.create_model_version(name, f"runs:/{run_id}/model", run_id)
    with azure.lock:  # a version deleted in the studio leaves a gap
        del azure.versions[(name, 2)]
    assert [v.version for v in reg.search_model_versions(name)] == ["3", "1"]
    with pytest.raises(NotFound):
        reg.get_model_version(name, "2")
    azure.rotate()  # the Entra token expires before the next registration: renewed, registered once
    fresh = run_with_model(reg, tmp_path / "fresh")
    assert reg.create_model_version(name, f"runs:/{fresh}/model", fresh).version == "4"
    assert [v.version for v in reg.search_model_versions(name)] == ["4", "3", "1"]


def bot(project: Path, server: AzureMlflowServer, *args: str, expect: int = 0) -> tuple[dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(token_env(server), **{COUNTER_ENV: str(project.parent / "executions")})
    done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(project), *args, "--json"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == expect, done.stderr
    return (json.loads(done.stdout) if done.stdout.strip() else {}), done.stderr


def azure_project(server: AzureMlflowServer, root: Path, model: str) -> Path:
    project = make_project(root, uri=server.tracking_uri, experiment=f"az-{root.parent.name}")
    config = project / "ml.yaml"
    config.write_text(config.read_text().replace("name: demo-model", f"name: {model}")
                      + "compare:\n  criteria:\n    - {metric: accuracy, threshold: 0.5}\n")
    return project


def test_run_promote_gate_status_with_a_token_expiring_mid_run(azure: AzureMlflowServer, tmp_path: Path) -> None:
    model = f"az-loop-{tmp_path.name[-12:]}"
    project = azure_project(azure, tmp_path / "project", model)
    refused_before = len([s for s in azure.calls() if s.status == 401])
    azure.rotate_after = 8  # the token the run started with expires while it trains
    run, _ = bot(project, azure, "run")
    assert azure.rotate_after is None and len([s for s in azure.seen if s.status == 401]) > refused_before
    promoted, _ = bot(project, azure, "promote")
    assert promoted["promoted"] is True, promoted
    version = str(promoted["version"])
    assert azure.versions[(model, int(version))]["source"] == f"runs:/{run['run_id']}/model"
    again, _ = bot(project, azure, "promote")  # a re-run registers nothing twice
    assert str(again["version"]) == version
    assert len([k for k in azure.versions if k[0] == model]) == 1
    gate, _ = bot(project, azure, "gate")
    assert gate["open"] is True and str(gate["version"]) == version, gate
    status, _ = bot(project, azure, "status")
    assert run["run_id"] in json.dumps(status)
    assert azure.violations == []


def test_promoting_a_model_that_is_not_an_mlflow_model_says_what_to_do(azure: AzureMlflowServer,
                                                                       tmp_path: Path) -> None:
    model = f"az-nomlmodel-{tmp_path.name[-12:]}"
    project = azure_project(azure, tmp_path / "project", model)
    train = project / "train.py"
    train.write_text(train.read_text().replace('pathlib.Path("build/model/MLmodel").write_text("flavors: {}\\n")\n',
                                               ""))
    bot(project, azure, "run")
    _, stderr = bot(project, azure, "promote", expect=3)
    assert "model-versions/create" in stderr and azure.tracking_uri in stderr
    assert "mlflow.<flavor>.save_model" in stderr and "Nothing was registered" in stderr
    assert [k for k in azure.versions if k[0] == model] == []
