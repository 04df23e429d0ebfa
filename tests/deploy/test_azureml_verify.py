"""Verification before traffic of the `azureml_endpoint` target (deploy/azureml_score.py): real sklearn MLflow Models
registered with their run's recorded predictions, scored by the Azure ML stand-in's data plane
(tests/servers/azureml_scoring.py) through the endpoint's key and the `azureml-model-deployment` header, before any
traffic moves; a version that disagrees with its own evaluation is refused, its deployment deleted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops_bot.config.model import DeployTarget, Rollout, RolloutStep, Verify
from mlops_bot.deploy import DeployOptions, deploy_all
from mlops_bot.deploy.azureml_endpoint import deployment_name
from mlops_bot.deploy.azureml_score import payload
from mlops_bot.registry import tags
from mlops_bot.registry.local.store import LocalRegistry
from tests.helpers.deploy import MODEL, make_config
from tests.helpers.serving import PREDICTIONS, register, save_model, write_predictions, write_rows
from tests.servers.azureml_endpoints import WORKSPACE, AzureEndpointsServer

ENDPOINT = "iris-prod"
V2 = deployment_name(MODEL, "2")
SAMPLE = 60  # two requests: 50 rows, then 10


@dataclass(frozen=True)
class Models:
    rows: Path
    good: Path  # fitted on the labels
    bad: Path  # fitted on label + 1: answers 1..3 where the run recorded 0..2
    recorded: Path  # the good model's predictions, as the evaluation step writes them


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    where = tmp_path_factory.mktemp("azureml-models")
    features, labels = write_rows(where / "rows.csv")
    good = save_model(where / "good", features, labels)
    save_model(where / "bad", features, labels + 1)
    write_predictions(where / PREDICTIONS, labels, good.predict(features))
    return Models(where / "rows.csv", where / "good", where / "bad", where / PREDICTIONS)


def quiet(_: str) -> None:
    pass


def target(server: AzureEndpointsServer, rollout: Rollout | None = None) -> DeployTarget:
    verify = Verify(rows="rows.csv", drop=("label",), sample=SAMPLE, agreement=0.95, predictions=PREDICTIONS)
    return DeployTarget("prod", "azureml_endpoint", workspace=WORKSPACE, endpoint=ENDPOINT,
                        management_url=server.origin, rollout=rollout, timeout=30.0, verify=verify)


def setup(tmp_path: Path, store: LocalRegistry, server: AzureEndpointsServer, models: Models,
          auth_mode: str = "Key") -> None:
    """The endpoint serving v2 (unverified, models 1..3 exist), the evaluation rows beside ml.yaml."""
    server.add_endpoint(ENDPOINT, auth_mode)
    for version in ("1", "2", "3"):
        server.add_model(MODEL, version)
    shutil.copy(models.rows, tmp_path / "rows.csv")
    bare = DeployTarget("prod", "azureml_endpoint", workspace=WORKSPACE, endpoint=ENDPOINT,
                        management_url=server.origin, timeout=30.0)
    assert [r.status for r in deploy_all(make_config(tmp_path, bare), store, "2", DeployOptions(echo=quiet))] == \
        ["succeeded"]


def new_version(store: LocalRegistry, server: AzureEndpointsServer, model_dir: Path, recorded: Path) -> str:
    """A version whose run holds `model_dir` and `recorded`, and its model asset in the workspace serving it."""
    version = register(store, model_dir, recorded, experiment="iris", model=MODEL)
    server.add_model(MODEL, version, model_dir)
    return version


def steps() -> Rollout:
    return Rollout(steps=(RolloutStep(50, 0.1), RolloutStep(100)), interval_s=0.1)


@pytest.fixture
def arm(azureml_endpoints: AzureEndpointsServer, monkeypatch: pytest.MonkeyPatch) -> AzureEndpointsServer:
    monkeypatch.setenv("AZURE_ACCESS_TOKEN", azureml_endpoints.token)
    return azureml_endpoints


def secrets_of(server: AzureEndpointsServer) -> list[str]:
    return [value for keys in server.plane.keys.values() for value in keys.values()]


@pytest.mark.parametrize("auth_mode,credential", [("Key", "primaryKey"), ("AMLToken", "accessToken")])
def test_a_good_version_is_verified_on_its_own_deployment_before_any_traffic(
        tmp_path: Path, store: LocalRegistry, arm: AzureEndpointsServer, models: Models, auth_mode: str,
        credential: str) -> None:
    setup(tmp_path, store, arm, models, auth_mode)
    version = new_version(store, arm, models.good, models.recorded)
    new, before = deployment_name(MODEL, version), len(arm.seen)
    results = deploy_all(make_config(tmp_path, target(arm)), store, version, DeployOptions(echo=quiet))
    assert [r.status for r in results] == ["succeeded"], results[0].detail
    assert f"verified: agreement 1.0000 on {SAMPLE} rows (required 0.95)" in results[0].detail
    evidence = json.loads(store.get_model_version(MODEL, version).tags[tags.deploy_tag("prod", "verify")])
    assert (evidence["passed"], evidence["rows"], evidence["agreement"]) == (True, SAMPLE, 1.0)
    calls = arm.seen[before:]
    scored = [i for i, s in enumerate(calls) if s.operation == "Score"]
    moved = [i for i, s in enumerate(calls) if s.operation == "OnlineEndpoints_CreateOrUpdate"]
    assert len(scored) == 2 and max(scored) < min(moved)  # every request before the first traffic change
    key = arm.plane.keys[ENDPOINT][credential]
    for i in scored:
        assert calls[i].headers["authorization"] == f"Bearer {key}" and calls[i].status == 200
        assert calls[i].headers["azureml-model-deployment"] == new
        assert isinstance(calls[i].body["input_data"], list)  # the model's signature takes a tensor
    assert [len(calls[i].body["input_data"]) for i in scored] == [50, SAMPLE - 50]
    assert arm.traffic(ENDPOINT) == {new: 100} and arm.traffic_log[1:] == [{new: 100}]
    recorded = store.get_model_version(MODEL, version).tags
    assert not any(secret in value for secret in secrets_of(arm) for value in [results[0].detail, *recorded.values()])


@pytest.mark.parametrize("rollout", [None, steps()], ids=["plain", "rollout"])
def test_a_version_that_disagrees_with_its_evaluation_is_refused_and_its_deployment_deleted(
        tmp_path: Path, store: LocalRegistry, arm: AzureEndpointsServer, models: Models,
        rollout: Rollout | None) -> None:
    setup(tmp_path, store, arm, models)
    version = new_version(store, arm, models.bad, models.recorded)
    lines: list[str] = []
    results = deploy_all(make_config(tmp_path, target(arm, rollout)), store, version, DeployOptions(echo=lines.append))
    assert [r.status for r in results] == ["failed"]
    assert f"v{version} failed verification before traffic: agreement 0.0000 on {SAMPLE} rows" in results[0].detail
    recorded = store.get_model_version(MODEL, version).tags
    evidence = json.loads(recorded[tags.deploy_tag("prod", "verify")])
    assert (evidence["passed"], evidence["rows"], evidence["agreement"]) == (False, SAMPLE, 0.0)
    assert recorded[tags.deploy_status("prod")] == "failed"
    new = deployment_name(MODEL, version)
    assert arm.traffic(ENDPOINT) == {V2: 100} and arm.traffic_log == [{V2: 100}]  # traffic never moved
    assert (ENDPOINT, new) not in arm.deployments and len(arm.calls("Score")) == 2
    assert any(f"deployment '{new}' deleted: it took no traffic" in line for line in lines)
    assert not any(secret in value for secret in secrets_of(arm) for value in [results[0].detail, *recorded.values()])


def test_a_scoring_error_never_shows_the_key_and_leaves_nothing_behind(
        tmp_path: Path, store: LocalRegistry, arm: AzureEndpointsServer, models: Models) -> None:
    setup(tmp_path, store, arm, models)
    version = new_version(store, arm, models.good, models.recorded)
    key = arm.plane.keys[ENDPOINT]["primaryKey"]
    arm.fail("Score", 400, body={"message": f"rejected the request of Bearer {key}"})
    results = deploy_all(make_config(tmp_path, target(arm)), store, version, DeployOptions(echo=quiet))
    assert [r.status for r in results] == ["failed"]
    assert f"POST {arm.origin}/score/{ENDPOINT} answered HTTP 400: " in results[0].detail
    assert "Bearer ***" in results[0].detail and key not in results[0].detail
    assert (ENDPOINT, deployment_name(MODEL, version)) not in arm.deployments
    assert arm.traffic(ENDPOINT) == {V2: 100}


def test_a_deployment_that_cannot_be_deleted_is_named_and_the_refusal_still_stands(
        tmp_path: Path, store: LocalRegistry, arm: AzureEndpointsServer, models: Models) -> None:
    setup(tmp_path, store, arm, models)
    version = new_version(store, arm, models.bad, models.recorded)
    arm.fail("OnlineDeployments_Delete", 409, body={"error": {"code": "Conflict", "message": "busy"}})
    lines: list[str] = []
    results = deploy_all(make_config(tmp_path, target(arm)), store, version, DeployOptions(echo=lines.append))
    assert [r.status for r in results] == ["failed"] and "failed verification before traffic" in results[0].detail
    new = deployment_name(MODEL, version)
    assert any(f"deployment '{new}' was left in place: " in line and "Conflict: busy" in line for line in lines)
    assert arm.traffic(ENDPOINT) == {V2: 100} and (ENDPOINT, new) in arm.deployments


def test_without_verify_rows_a_warning_and_no_request(tmp_path: Path, store: LocalRegistry,
                                                     arm: AzureEndpointsServer, models: Models) -> None:
    setup(tmp_path, store, arm, models)
    version = new_version(store, arm, models.bad, models.recorded)
    lines: list[str] = []
    bare = DeployTarget("prod", "azureml_endpoint", workspace=WORKSPACE, endpoint=ENDPOINT,
                        management_url=arm.origin, timeout=30.0)
    results = deploy_all(make_config(tmp_path, bare), store, version, DeployOptions(echo=lines.append))
    assert [r.status for r in results] == ["succeeded"]
    assert any("has no verify.rows; the new version takes traffic without verification" in line for line in lines)
    assert arm.calls("Score") == [] and arm.calls("OnlineEndpoints_ListKeys") == []
    assert store.get_model_version(MODEL, version).tags[tags.deploy_tag("prod", "verify")] == '{"skipped": true}'


def test_the_request_body_follows_azure_mls_input_data() -> None:
    assert json.loads(payload(["a", "b"], [[1, 2], [3, 4]], tensor=True)) == {"input_data": [[1, 2], [3, 4]]}
    assert json.loads(payload(["a", "b"], [[1, 2], [3, 4]], tensor=False)) == \
        {"input_data": {"columns": ["a", "b"], "index": [0, 1], "data": [[1, 2], [3, 4]]}}


ML_YAML = """\
version: 1
model: {{name: {model}, artifact: build/model}}
tracking: {{uri: local, experiment: iris}}
pipeline:
  train: {{cmd: "true", outs: [build/model, {predictions}], predictions: {predictions}}}
deploy:
  - name: prod
    type: azureml_endpoint
    workspace: {workspace}
    endpoint: {endpoint}
    management_url: {origin}
    verify: {{rows: rows.csv, drop: [label], sample: {sample}}}
"""


def test_mlops_bot_deploy_of_a_refused_version_exits_3(tmp_path: Path, store: LocalRegistry,
                                                      arm: AzureEndpointsServer, models: Models) -> None:
    setup(tmp_path, store, arm, models)
    version = new_version(store, arm, models.bad, models.recorded)
    project = tmp_path / "project"  # where `store` keeps .mlops-bot
    shutil.copy(models.rows, project / "rows.csv")
    (project / "ml.yaml").write_text(ML_YAML.format(model=MODEL, workspace=WORKSPACE, endpoint=ENDPOINT,
                                                    origin=arm.origin, predictions=PREDICTIONS, sample=SAMPLE))
    done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(project), "deploy", "--version", version,
                           "--json"], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "AZURE_ACCESS_TOKEN": arm.token})
    assert done.returncode == 3, done.stderr
    assert [r["status"] for r in json.loads(done.stdout)["results"]] == ["failed"]
    assert arm.traffic(ENDPOINT) == {V2: 100} and (ENDPOINT, deployment_name(MODEL, version)) not in arm.deployments
    assert not any(secret in done.stdout + done.stderr for secret in secrets_of(arm))
