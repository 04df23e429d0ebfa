"""The `azureml_endpoint` target and its rollout driver against the stand-in of Azure Resource Manager's online-endpoint
API (tests/servers/azureml_endpoints.py), through deploy_all on the embedded registry: one deployment per version,
the endpoint's traffic moved by PUT, long-running operations waited for, errors named without the token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.config.model import DeployTarget, Rollout, RolloutStep
from mlops_bot.deploy import DeployOptions, deploy_all
from mlops_bot.deploy.azureml_arm import Arm, access_token
from mlops_bot.deploy.azureml_endpoint import deployment_name, up_to_date
from mlops_bot.deploy.base import DeployRequest, DeploySession
from mlops_bot.deploy.rollout.azureml_split import Driver
from mlops_bot.deploy.rollout.state import read_state
from mlops_bot.errors import RemoteError, UsageError
from mlops_bot.registry import tags
from mlops_bot.registry.local.store import LocalRegistry
from tests.helpers.deploy import MODEL, make_config
from tests.servers.azureml_endpoints import WORKSPACE, AzureEndpointsServer

ENDPOINT = "iris-prod"
V2, V3 = "iris-classifier-v2", "iris-classifier-v3"


def quiet(_: str) -> None:
    pass


@pytest.fixture
def arm(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AzureEndpointsServer:
    """The stand-in with the endpoint and model assets v1..v3, and the job's token in the environment."""
    server: AzureEndpointsServer = request.getfixturevalue("azureml_endpoints")
    server.add_endpoint(ENDPOINT)
    for version in ("1", "2", "3"):
        server.add_model(MODEL, version)
    monkeypatch.setenv("AZURE_ACCESS_TOKEN", server.token)
    return server


def target(server: AzureEndpointsServer, rollout: Rollout | None = None) -> DeployTarget:
    return DeployTarget("prod", "azureml_endpoint", workspace=WORKSPACE, endpoint=ENDPOINT,
                        management_url=server.origin, rollout=rollout, timeout=30.0)


def steps() -> Rollout:
    return Rollout(steps=(RolloutStep(10, 0.2), RolloutStep(50, 0.2), RolloutStep(100)), interval_s=0.1)


def serving_v2(tmp_path: Path, store: LocalRegistry, server: AzureEndpointsServer) -> None:
    first = deploy_all(make_config(tmp_path, target(server)), store, "2", DeployOptions(echo=quiet))
    assert [r.status for r in first] == ["succeeded"], first[0].detail
    assert server.traffic(ENDPOINT) == {V2: 100}


def test_deployment_names_follow_azures_rules() -> None:
    assert deployment_name("iris-classifier", "3") == "iris-classifier-v3"
    assert deployment_name("2024_Fraud.Model", "12") == "fraud-model-v12"  # starts with a letter, lower case
    long = deployment_name("a-very-long-model-name-that-never-fits-anywhere", "1234")
    assert long == "a-very-long-model-name-tha-v1234" and len(long) <= 32
    assert deployment_name("42", "7") == "v7"


def test_deploy_creates_the_deployment_moves_traffic_and_a_rerun_changes_nothing(
        tmp_path: Path, store: LocalRegistry, arm: AzureEndpointsServer) -> None:
    serving_v2(tmp_path, store, arm)
    config = make_config(tmp_path, target(arm))
    results = deploy_all(config, store, "3", DeployOptions(echo=quiet))
    assert [r.status for r in results] == ["succeeded"]
    assert f"deployment {V3} takes 100% of traffic at {arm.origin}/score/{ENDPOINT}" in results[0].detail
    assert f"deleted {V2}; not verified (the target has no verify.rows)" in results[0].detail
    assert arm.traffic(ENDPOINT) == {V3: 100}
    assert sorted(name for _, name in arm.deployments) == [V3]  # v2 lost its traffic, then its deployment
    put = arm.calls("OnlineDeployments_CreateOrUpdate")[-1]
    assert put.body["properties"] == {"endpointComputeType": "Managed", "instanceType": "Standard_DS3_v2",
                                      "model": f"{WORKSPACE}/models/{MODEL}/versions/3",
                                      "scaleSettings": {"scaleType": "Default"}}
    assert put.body["sku"]["capacity"] == 1 and put.query["api-version"] == ["2024-04-01"]
    assert arm.calls("OnlineEndpoints_Update") == []  # traffic goes by PUT: the spec's PATCH takes no properties
    before = len(arm.seen)
    again = deploy_all(config, store, "3", DeployOptions(echo=quiet, force=True))
    assert [r.status for r in again] == ["succeeded"] and again[0].detail.startswith("already deployed: ")
    assert {s.method for s in arm.seen[before:]} == {"GET"}  # nothing written, no second PUT
    assert len(arm.calls("OnlineDeployments_CreateOrUpdate")) == 2  # v2's and v3's, once each


def test_a_rollout_moves_traffic_step_by_step_and_retires_the_old_deployment(
        tmp_path: Path, store: LocalRegistry, arm: AzureEndpointsServer) -> None:
    serving_v2(tmp_path, store, arm)
    results = deploy_all(make_config(tmp_path, target(arm, steps())), store, "3", DeployOptions(echo=quiet))
    assert [r.status for r in results] == ["succeeded"], results[0].detail
    assert arm.traffic_log[1:] == [{V2: 90, V3: 10}, {V2: 50, V3: 50}, {V2: 0, V3: 100}, {V3: 100}]
    assert sorted(name for _, name in arm.deployments) == [V3]
    version = store.get_model_version(MODEL, "3")
    assert read_state(version, "prod").phase == "completed"  # type: ignore[union-attr]
    assert read_state(version, "prod").stable == "2"  # type: ignore[union-attr]
    assert version.tags[tags.deploy_status("prod")] == "succeeded"


def test_restore_after_a_split_gives_the_traffic_back_and_deletes_the_new_deployment(
        tmp_path: Path, store: LocalRegistry, arm: AzureEndpointsServer) -> None:
    serving_v2(tmp_path, store, arm)
    request = DeployRequest(MODEL, "3", f"models:/{MODEL}/3")
    driver = Driver(target(arm, steps()), request, DeploySession(root=tmp_path, delivery="d", echo=quiet))
    assert driver.prepare() == {"verify": '{"skipped": true}'}  # no verify.rows: a warning, no verification
    assert driver.stable() == "2" and arm.traffic(ENDPOINT) == {V2: 100}  # prepared with no traffic
    assert "iris-classifier-v2 90%, iris-classifier-v3 10%" in driver.split(10)
    assert driver.split(10).endswith("(already so)")  # the same step twice writes nothing
    assert arm.traffic(ENDPOINT) == {V2: 90, V3: 10}
    assert driver.restore() == f"endpoint {ENDPOINT}: all traffic back to {V2}; deployment {V3} deleted"
    assert arm.traffic(ENDPOINT) == {V2: 100} and (ENDPOINT, V3) not in arm.deployments
    writes = len(arm.calls("OnlineEndpoints_CreateOrUpdate"))
    assert driver.restore().endswith("already gone")  # again: nothing to do
    assert len(arm.calls("OnlineEndpoints_CreateOrUpdate")) == writes
    assert driver.shadow(0) == "no shadow traffic"


@pytest.mark.parametrize("rollout", [None, steps()], ids=["plain", "rollout"])
def test_a_failed_provisioning_is_refused_with_evidence_and_traffic_untouched(
        tmp_path: Path, store: LocalRegistry, arm: AzureEndpointsServer, rollout: Rollout | None) -> None:
    serving_v2(tmp_path, store, arm)
    arm.models.discard(f"{WORKSPACE}/models/{MODEL}/versions/3".lower())  # the asset is missing: provisioning fails
    results = deploy_all(make_config(tmp_path, target(arm, rollout)), store, "3", DeployOptions(echo=quiet))
    assert [r.status for r in results] == ["failed"]
    assert f"could not provision deployment '{V3}'" in results[0].detail and "ModelNotFound" in results[0].detail
    evidence = json.loads(store.get_model_version(MODEL, "3").tags[tags.deploy_tag("prod", "provisioning")])
    assert evidence["status"] == "Failed" and evidence["error"]["code"] == "ModelNotFound"
    assert arm.traffic(ENDPOINT) == {V2: 100} and arm.traffic_log == [{V2: 100}]


def test_a_refused_token_is_a_clear_error_that_never_shows_the_token(
        tmp_path: Path, store: LocalRegistry, arm: AzureEndpointsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_ACCESS_TOKEN", "expired-token-0123456789")
    results = deploy_all(make_config(tmp_path, target(arm)), store, "3", DeployOptions(echo=quiet))
    assert [r.status for r in results] == ["failed"]
    detail = results[0].detail
    assert f"Azure ML: HTTP 401 from {arm.origin}{WORKSPACE}/onlineEndpoints/{ENDPOINT}: InvalidAuthenticationToken" \
           in detail and "renew AZURE_ACCESS_TOKEN" in detail
    assert "expired-token" not in detail and "api-version" not in detail
    assert arm.calls("OnlineDeployments_CreateOrUpdate") == []


def test_an_error_that_echoes_the_token_is_scrubbed(tmp_path: Path, store: LocalRegistry,
                                                   arm: AzureEndpointsServer) -> None:
    arm.fail("OnlineEndpoints_Get", 400, body={"error": {"code": "BadRequest", "message": f"bad {arm.token}"}})
    results = deploy_all(make_config(tmp_path, target(arm)), store, "3", DeployOptions(echo=quiet))
    assert [r.status for r in results] == ["failed"] and "BadRequest: bad ***" in results[0].detail
    recorded = store.get_model_version(MODEL, "3").tags
    assert all(arm.token not in value for value in recorded.values())


def test_a_429_is_retried_after_its_retry_after_and_polls_wait_as_asked(arm: AzureEndpointsServer) -> None:
    waits: list[float] = []
    arm.retry_after = "7"
    arm.fail("OnlineDeployments_CreateOrUpdate", 429, headers={"Retry-After": "3"},
             body={"error": {"code": "TooManyRequests", "message": "slow down"}})
    body = {"location": "eastus", "properties": {"endpointComputeType": "Managed",
                                                 "model": arm.add_model(MODEL, "3")}}
    with Arm(arm.origin, arm.token, timeout=60.0, sleep=waits.append) as client:
        done = client.put(f"{WORKSPACE}/onlineEndpoints/{ENDPOINT}/deployments/{V3}", body)
    assert done["properties"]["provisioningState"] == "Succeeded"
    assert [s.status for s in arm.calls("OnlineDeployments_CreateOrUpdate")] == [429, 201]
    assert waits == [3.0, 7.0, 7.0]  # the 429's Retry-After, then the operation's before each poll


def test_a_missing_endpoint_is_named_with_what_to_do(tmp_path: Path, store: LocalRegistry,
                                                     arm: AzureEndpointsServer) -> None:
    arm.endpoints.clear()
    results = deploy_all(make_config(tmp_path, target(arm)), store, "3", DeployOptions(echo=quiet))
    assert [r.status for r in results] == ["failed"]
    assert f"the online endpoint '{ENDPOINT}' does not exist in workspace {WORKSPACE}; create it first" in \
        results[0].detail


def test_every_request_carries_the_token_and_the_spec_api_version(tmp_path: Path, store: LocalRegistry,
                                                                  arm: AzureEndpointsServer) -> None:
    serving_v2(tmp_path, store, arm)
    seen: list[Any] = arm.calls()
    refused = [(s.operation, s.status) for s in seen if s.status >= 400]
    assert refused == [("OnlineDeployments_Get", 404)]  # v2's deployment, looked for before it is created
    assert all(s.headers["authorization"] == f"Bearer {arm.token}" for s in seen)
    assert all(s.query["api-version"] == ["2024-04-01"] for s in seen)
    assert {s.operation for s in seen} >= {"OnlineEndpoints_Get", "OnlineDeployments_CreateOrUpdate",
                                           "OnlineEndpoints_CreateOrUpdate", "Operation_Status"}
    assert arm.violations == []


def test_a_first_rollout_gives_the_version_all_traffic_once(tmp_path: Path, store: LocalRegistry,
                                                            arm: AzureEndpointsServer) -> None:
    results = deploy_all(make_config(tmp_path, target(arm, steps())), store, "3", DeployOptions(echo=quiet))
    assert [r.status for r in results] == ["succeeded"], results[0].detail
    assert arm.traffic_log == [{V3: 100}]  # nothing to split with: the last step, and finishing writes nothing more
    assert read_state(store.get_model_version(MODEL, "3"), "prod").stable is None  # type: ignore[union-attr]


def test_an_operation_that_outlives_the_timeout_is_reported_with_what_to_do(arm: AzureEndpointsServer) -> None:
    body = {"location": "eastus", "properties": {"endpointComputeType": "Managed",
                                                 "model": arm.add_model(MODEL, "3")}}
    with Arm(arm.origin, arm.token, timeout=0.0, sleep=lambda _s: None) as client, \
            pytest.raises(RemoteError, match=r"did not finish within 0s \(the target's timeout\)") as caught:
        client.put(f"{WORKSPACE}/onlineEndpoints/{ENDPOINT}/deployments/{V3}", body)
    assert "mfeOperationsStatus/op-1" in str(caught.value) and "api-version" not in str(caught.value)


def test_without_a_token_or_azure_identity_the_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # as if the `azure` extra were not installed
    with pytest.raises(UsageError, match=r"set AZURE_ACCESS_TOKEN, or install azure-identity with `pip install "
                                         r"mlops-bot\[azure\]`"):
        access_token({})
    assert access_token({"AZURE_ACCESS_TOKEN": " abc \n"}) == "abc"


def test_up_to_date_asks_the_endpoint_itself(tmp_path: Path, store: LocalRegistry, arm: AzureEndpointsServer) -> None:
    serving_v2(tmp_path, store, arm)
    session = DeploySession(root=tmp_path, delivery="d", echo=quiet)
    v2, v3 = (DeployRequest(MODEL, v, f"models:/{MODEL}/{v}") for v in ("2", "3"))
    assert up_to_date(target(arm), v2, session) == (f"already deployed: endpoint {ENDPOINT}: deployment {V2} takes "
                                                    f"100% of traffic at {arm.origin}/score/{ENDPOINT}")
    assert up_to_date(target(arm), v3, session) is None
    arm.token = "rotated"  # Azure refusing the question is not an answer: the deployment reports it
    assert up_to_date(target(arm), v2, session) is None


ML_YAML = """\
version: 1
model: {{name: {model}, artifact: build/model}}
tracking: {{uri: local, experiment: iris}}
pipeline:
  train: {{cmd: "true"}}
deploy:
  - name: prod
    type: azureml_endpoint
    workspace: {workspace}
    endpoint: {endpoint}
    management_url: {origin}
    instance_count: 2
    rollout: {{steps: [{{traffic: 25, hold: 0.1s}}, {{traffic: 100}}], interval: 0.1s}}
"""


def test_mlops_bot_deploy_rolls_out_from_ml_yaml(tmp_path: Path, store: LocalRegistry,
                                                 arm: AzureEndpointsServer) -> None:
    serving_v2(tmp_path, store, arm)
    project = tmp_path / "project"  # where `store` keeps .mlops-bot
    (project / "ml.yaml").write_text(ML_YAML.format(model=MODEL, workspace=WORKSPACE, endpoint=ENDPOINT,
                                                    origin=arm.origin))
    done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(project), "deploy", "--version", "3",
                           "--json"], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "AZURE_ACCESS_TOKEN": arm.token})
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in json.loads(done.stdout)["results"]] == ["succeeded"]
    assert arm.traffic_log[1:] == [{V2: 75, V3: 25}, {V2: 0, V3: 100}, {V3: 100}]
    assert arm.calls("OnlineDeployments_CreateOrUpdate")[-1].body["sku"]["capacity"] == 2
    assert arm.token not in done.stdout + done.stderr
