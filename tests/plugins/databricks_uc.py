"""The Databricks Unity Catalog stand-in (tests/servers/databricks_uc.py), started once per session when a test
asks, and `ContractUnityRegistry`: the bot's UnityRegistry for the contract suite, whose runs hold no files. Unity
Catalog copies a version's files and takes MLflow Models with a signature only, so before a version is created this
one writes a stub signed MLflow Model where the source points (the Azure stand-in relaxes the server instead; here
the bot itself checks the files, as MLflow's UC client does)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from mlops_bot.registry.base import ModelVersion
from mlops_bot.registry.mlflow.unity import UnityRegistry
from tests.servers.databricks_uc import DatabricksUcServer, start

STUB_MLMODEL = """flavors:
  python_function: {loader_module: mlflow.pyfunc.model, python_version: 3.11.0}
signature:
  inputs: '[{"type": "double", "name": "x", "required": true}]'
  outputs: '[{"type": "long", "required": true}]'
"""


class ContractUnityRegistry(UnityRegistry):
    def create_model_version(self, name: str, source: str, run_id: str, tags: Mapping[str, str] | None = None,
                             description: str = "", model_id: str = "") -> ModelVersion:
        path = source.removeprefix(f"runs:/{run_id}/")
        if path != source and "MLmodel" not in self.list_artifacts(run_id, path):
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "MLmodel").write_text(STUB_MLMODEL)
                self.upload_artifacts(run_id, Path(tmp) / "MLmodel", path)
        return super().create_model_version(name, source, run_id, tags, description, model_id)


@pytest.fixture(scope="session")
def databricks_uc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabricksUcServer]:
    server = start(tmp_path_factory.mktemp("databricks-uc"))
    try:
        yield server
    finally:
        server.stop()
