"""Session-wide fixtures: the real `mlflow server` (started once, only when a test asks for it) and
fresh registries of each kind."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.registry.base import Capabilities, Registry
from tests.helpers.registries import TEST_RETRY
from tests.servers.mlflow_server import MlflowServer, start

# Fixtures used by more than one folder.
pytest_plugins = ["tests.plugins.forge_servers", "tests.plugins.event_parts", "tests.plugins.stores",
                  "tests.plugins.gitlab_mlflow", "tests.plugins.azureml_mlflow", "tests.plugins.databricks_uc",
                  "tests.plugins.second_mlflow", "tests.plugins.prometheus_server",
                  "tests.plugins.azureml_endpoints", "tests.plugins.postgres_server", "tests.plugins.ray_cluster",
                  "tests.plugins.kubernetes_api"]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server (sqlite backend, proxied artifacts, 1 worker) on 127.0.0.1."""
    server = start(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names no other test uses (the mlflow server is shared by the whole session)."""
    token = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}-{token}"


@pytest.fixture
def registry_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Registry]]:
    """`make(kind, **options)`: a fresh Registry; kind is local, mlflow, mlflow-tag-aliases (the real
    server with aliases and version search forced off, exercising the fallbacks), gitlab (the stand-in for
    GitLab's MLflow API) or azureml (Azure ML's). Closed at teardown."""
    made: list[Registry] = []

    def make(kind: str, **options: Any) -> Registry:
        registry: Registry
        if kind == "local":
            from mlops_bot.registry.local.store import LocalRegistry

            registry = LocalRegistry(tmp_path / f"store-{len(made)}" / ".mlops-bot")
        else:
            from mlops_bot.registry.mlflow.client import MlflowRegistry
            from mlops_bot.registry.mlflow.http import RetryPolicy

            options.setdefault("retry", RetryPolicy(**TEST_RETRY))
            if kind == "gitlab":  # GitLab's MLflow API (tests/servers/gitlab_mlflow.py): capabilities learned
                from tests.servers.gitlab_mlflow import TOKEN

                uri = request.getfixturevalue("gitlab_mlflow").tracking_uri
                registry = MlflowRegistry(uri, options.pop("env", {"MLFLOW_TRACKING_TOKEN": TOKEN}), **options)
                made.append(registry)
                return registry
            if kind == "azureml":  # Azure ML's MLflow API (tests/servers/azureml_mlflow.py): capabilities learned
                standin = request.getfixturevalue("azureml_mlflow_contract")
                env = options.pop("env", {"MLFLOW_TRACKING_TOKEN": standin.token})
                registry = MlflowRegistry(standin.tracking_uri, env, **options)
                made.append(registry)
                return registry
            if kind == "databricks-uc":  # Databricks with Unity Catalog (tests/servers/databricks_uc.py)
                from tests.plugins.databricks_uc import ContractUnityRegistry

                standin = request.getfixturevalue("databricks_uc")
                options.pop("capabilities", None)
                registry = ContractUnityRegistry(standin.tracking_uri, options.pop("env", {"MLFLOW_TRACKING_TOKEN":
                                                                                           standin.token}), **options)
                made.append(registry)
                return registry
            server: MlflowServer = request.getfixturevalue("mlflow_server")
            if kind == "mlflow-tag-aliases":
                options.setdefault("capabilities", Capabilities(aliases=False, version_search=False))
            registry = MlflowRegistry(server.uri, options.pop("env", {}), **options)
        made.append(registry)
        return registry

    yield make
    for registry in made:
        registry.close()
