"""The bot against a Databricks workspace whose registry is Unity Catalog (the stand-in built from MLflow's UC client
and Databricks' REST reference, tests/servers/databricks_uc.py): runs on the workspace API, versions in
catalog.schema.model created PENDING, their files written to the storage location, finalized READY, and the
champion a UC alias. The whole loop runs through the real CLI as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.helpers.pipeline_project import COUNTER_ENV, make_project
from tests.servers.databricks_uc import DatabricksUcServer

pytestmark = pytest.mark.slow  # CLI subprocesses

MLMODEL = ("flavors: {python_function: {loader_module: mlflow.sklearn}}\nsignature:\n"
           "  inputs: '[{\"type\": \"double\", \"name\": \"x\"}]'\n  outputs: '[{\"type\": \"long\"}]'\n")
SIGNED = f'pathlib.Path("build/model/MLmodel").write_text({MLMODEL!r})\n'  # a line of the project's train.py


def bot(project: Path, server: DatabricksUcServer, *args: str, expect: int = 0) -> tuple[dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({"MLFLOW_TRACKING_TOKEN": server.token, COUNTER_ENV: str(project.parent / "executions")})
    done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(project), *args, "--json"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == expect, done.stderr
    return (json.loads(done.stdout) if done.stdout.strip() else {}), done.stderr


def uc_project(server: DatabricksUcServer, root: Path, model: str, signed: bool = True) -> Path:
    project = make_project(root, uri=server.tracking_uri, experiment=f"/Shared/uc-{root.parent.name}")
    config = project / "ml.yaml"
    text = config.read_text().replace("name: demo-model", f"name: {model}")
    text = text.replace("tracking: {uri: ", "tracking: {registry_uri: databricks-uc, uri: ")
    assert "registry_uri: databricks-uc" in text, text
    config.write_text(text + "compare:\n  criteria:\n    - {metric: accuracy, threshold: 0.5}\n")
    if signed:
        train = project / "train.py"
        old = 'pathlib.Path("build/model/MLmodel").write_text("flavors: {}\\n")\n'
        assert old in train.read_text()
        train.write_text(train.read_text().replace(old, SIGNED))
    return project


def test_run_promote_gate_status_rollback_in_unity_catalog(databricks_uc: DatabricksUcServer, tmp_path: Path) -> None:
    model = f"main.ml.iris_{tmp_path.name[-8:].lower()}"
    project = uc_project(databricks_uc, tmp_path / "project", model)
    run, _ = bot(project, databricks_uc, "run")
    promoted, _ = bot(project, databricks_uc, "promote")
    assert promoted["promoted"] is True, promoted
    version = databricks_uc.uc_versions[(model, int(promoted["version"]))]
    assert (version["status"], version["run_id"]) == ("READY", run["run_id"])
    files = Path(urlsplit(version["storage_location"]).path)
    assert (files / "MLmodel").is_file() and "signature" in (files / "MLmodel").read_text()
    assert databricks_uc.uc_models[model]["aliases"] == {"champion": version["version"]}
    finalized = [s for s in databricks_uc.calls() if "finalize" in s.operation and (s.body or {}).get("name") == model]
    assert len(finalized) == 1, finalized
    again, _ = bot(project, databricks_uc, "promote")  # nothing registered twice
    assert str(again["version"]) == version["version"]
    assert [k for k in databricks_uc.uc_versions if k[0] == model] == [(model, 1)]
    gate, _ = bot(project, databricks_uc, "gate")
    assert gate["open"] is True and str(gate["version"]) == version["version"], gate
    status, _ = bot(project, databricks_uc, "status")
    assert run["run_id"] in json.dumps(status)
    # a second version from a changed training run becomes champion; rollback restores the first
    (project / "params.yaml").write_text("seed: 1\ntrain: {C: 0.7}\n")  # another model, above the threshold
    bot(project, databricks_uc, "run")
    second, _ = bot(project, databricks_uc, "promote")
    assert second["promoted"] is True and str(second["version"]) != version["version"], second
    assert databricks_uc.uc_models[model]["aliases"]["champion"] == str(second["version"])
    bot(project, databricks_uc, "rollback", "--to", version["version"], "--no-deploy")
    assert databricks_uc.uc_models[model]["aliases"]["champion"] == version["version"]
    assert not [s for s in databricks_uc.seen if s.status == 404 and "unity-catalog" in s.path
                and "ENDPOINT" in json.dumps(s.body or {})]
    assert databricks_uc.violations == []


def test_a_name_without_catalog_and_schema_is_a_located_config_error(databricks_uc: DatabricksUcServer,
                                                                      tmp_path: Path) -> None:
    project = uc_project(databricks_uc, tmp_path / "project", "iris")
    _, stderr = bot(project, databricks_uc, "validate", expect=2)
    assert "ml.yaml:" in stderr and "model.name" in stderr and "catalog.schema.model" in stderr, stderr


def test_a_model_without_a_signature_is_refused_and_nothing_registered(databricks_uc: DatabricksUcServer,
                                                                         tmp_path: Path) -> None:
    model = f"main.ml.nosig_{tmp_path.name[-8:].lower()}"
    project = uc_project(databricks_uc, tmp_path / "project", model, signed=False)
    bot(project, databricks_uc, "run")
    _, stderr = bot(project, databricks_uc, "promote", expect=2)
    assert "signature" in stderr and "Nothing was registered" in stderr, stderr
    assert [k for k in databricks_uc.uc_versions if k[0] == model] == []
