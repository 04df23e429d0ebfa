"""The Job, Secret and ConfigMap a kubernetes step sends, checked against the Kubernetes OpenAPI schema (1.33,
strict: no field the API server would drop) with kubernetes-validate, and their names, labels, credentials,
resources and command as the API server and the kubelet read them."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from mlops_bot.config.backends import StepBackend
from mlops_bot.pipeline import remote_entry
from mlops_bot.pipeline.backends.kubernetes_manifest import (
    ENTRY_DIR,
    JobSpec,
    entry_command,
    job_name,
    label_value,
    manifests,
    resources,
)

VERSION = "1.33"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
RUN_ID = "0123456789abcdef0123456789abcdef"
ENV = {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "MLFLOW_RUN_ID": RUN_ID, "MLFLOW_TRACKING_TOKEN": "tok-123",
       "AWS_SECRET_ACCESS_KEY": "aws-456", "STEP_NOTE": "costs $(HOME) and $5", "PYTHONUNBUFFERED": "1"}
BACKEND = StepBackend(type="kubernetes", image="python:3.12-slim", num_cpus=1.5, num_gpus=1, memory=4 * 1024 ** 3,
                      service_account="trainer")


def plan(backend: StepBackend = BACKEND, timeout: float | None = 90.5, env: dict[str, str] | None = None) -> Any:
    command = entry_command(["python", "-m", "mlops_bot.pipeline.remote_entry", "--run-id", RUN_ID, "--step",
                             "train", "--", "/bin/sh", "-c", "echo $$ > pid && python train.py"])
    spec = JobSpec(RUN_ID, "Train_Model", command, ENV if env is None else env, backend,
                   Path(remote_entry.__file__).read_text(), timeout)
    return manifests(job_name(RUN_ID, "Train_Model"), "ml", spec)


def test_every_manifest_is_valid_against_the_kubernetes_openapi_schema() -> None:
    made = plan()
    docs = [made.job, made.secret, made.config_map, *made.owned("5f0c-uid")]
    for doc in docs:
        assert kubernetes_validate.validate(doc, VERSION, strict=True) == VERSION
    assert kubernetes_validate.validate(plan(StepBackend(type="kubernetes", image="img:1"), None, {}).job, VERSION,
                                        strict=True)


@pytest.mark.parametrize("break_it", [
    lambda job: job["spec"].update(backofLimit=0),  # a misspelt field: the API server would drop it
    lambda job: job["spec"]["template"]["spec"]["containers"][0].update(command="python x.py"),  # not a list
    lambda job: job["spec"].update(activeDeadlineSeconds="90"),  # a string
])
def test_the_schema_check_can_fail(break_it: Any) -> None:
    job = copy.deepcopy(plan().job)
    break_it(job)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, VERSION, strict=True)


def test_names_are_dns_labels_and_labels_are_valid_values() -> None:
    for step in ("train", "Train_Model", "a" * 64, "_x-", "Über_step"):
        name = job_name(RUN_ID, step)
        assert DNS_LABEL.match(name) and len(name) <= 63, name
        assert name.startswith("mlops-bot-01234567-")
    assert job_name(RUN_ID, "Train_Model", "ab12c") == "mlops-bot-01234567-train-model-ab12c"
    assert job_name(RUN_ID, "t") != job_name(RUN_ID, "t")  # a random suffix: a rerun never collides
    labels = plan().job["metadata"]["labels"]
    assert labels == {"app.kubernetes.io/managed-by": "mlops-bot", "mlops-bot/run-id": RUN_ID,
                      "mlops-bot/step": "Train_Model"}
    assert label_value("_" + "x" * 80 + "_") == "x" * 62
    assert plan().job["metadata"]["annotations"]["mlops-bot/step"] == "Train_Model"


def test_credentials_travel_in_the_secret_only() -> None:
    made = plan()
    assert made.secret["stringData"] == {"MLFLOW_TRACKING_TOKEN": "tok-123", "AWS_SECRET_ACCESS_KEY": "aws-456"}
    job_text = json.dumps(made.job)
    assert "tok-123" not in job_text and "aws-456" not in job_text
    env = {e["name"]: e for e in made.job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLFLOW_TRACKING_TOKEN"] == {"name": "MLFLOW_TRACKING_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": made.name, "key": "MLFLOW_TRACKING_TOKEN"}}}
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow:5000"
    assert env["STEP_NOTE"]["value"] == "costs $$(HOME) and $$5"  # Kubernetes would expand $(HOME)
    assert plan(env={"MLFLOW_TRACKING_URI": "http://m"}).secret is None


def test_the_job_runs_the_mounted_wrapper_once_within_the_timeout() -> None:
    made = plan()
    spec = made.job["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 91 and spec["suspend"] is True
    assert spec["ttlSecondsAfterFinished"] > 0 and pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "trainer" and container["image"] == "python:3.12-slim"
    assert container["command"][:2] == ["python", f"{ENTRY_DIR}/remote_entry.py"]
    assert container["command"][-1] == "echo $$$$ > pid && python train.py"  # $$ reaches the shell as $$
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[ENTRY_DIR]["readOnly"] is True and container["workingDir"] in mounts
    assert made.config_map["data"]["remote_entry.py"] == Path(remote_entry.__file__).read_text()
    assert "activeDeadlineSeconds" not in plan(timeout=None).job["spec"]
    anonymous = plan(StepBackend(type="kubernetes", image="i")).job["spec"]["template"]["spec"]
    assert anonymous["automountServiceAccountToken"] is False and "serviceAccountName" not in anonymous


def test_the_secret_and_config_map_are_owned_by_the_job() -> None:
    made = plan()
    owned = made.owned("uid-1")
    assert [d["kind"] for d in owned] == ["Secret", "ConfigMap"]
    for doc in owned:
        assert doc["metadata"]["name"] == made.name
        assert doc["metadata"]["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "Job", "name": made.name,
                                                       "uid": "uid-1", "blockOwnerDeletion": False}]
    assert "ownerReferences" not in made.secret["metadata"]  # the plan itself is unchanged


def test_resources_are_requested_and_limited_alike() -> None:
    container = plan().job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "1500m", "memory": str(4 * 1024 ** 3),
                                                   "nvidia.com/gpu": "1"},
                                      "limits": {"cpu": "1500m", "memory": str(4 * 1024 ** 3), "nvidia.com/gpu": "1"}}
    assert resources(StepBackend(type="kubernetes", num_cpus=2)) == {"cpu": "2"}
    assert "resources" not in plan(StepBackend(type="kubernetes", image="i")).job["spec"]["template"]["spec"][
        "containers"][0]
    with pytest.raises(ValueError, match="whole GPUs"):
        resources(StepBackend(type="kubernetes", num_gpus=0.5))
