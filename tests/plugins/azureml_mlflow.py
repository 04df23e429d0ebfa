"""The Azure ML MLflow API stand-in (tests/servers/azureml_mlflow.py), started once per session when a test asks:
`azureml_mlflow` as Azure answers; `azureml_mlflow_contract` the same but registering versions of runs that hold no
MLmodel (the contract suite's runs hold no files)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.azureml_mlflow import AzureMlflowServer, start


@pytest.fixture(scope="session")
def azureml_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureMlflowServer]:
    server = start(tmp_path_factory.mktemp("azureml-artifacts"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def azureml_mlflow_contract(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureMlflowServer]:
    server = start(tmp_path_factory.mktemp("azureml-contract-artifacts"), models_only=False)
    try:
        yield server
    finally:
        server.stop()
