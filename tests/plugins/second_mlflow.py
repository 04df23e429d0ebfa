"""A second real `mlflow server` (its own sqlite store and proxied artifacts), started once per session and only
when a test asks: the other registry of `promote --to-registry` (tests/lifecycle/test_transfer.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.mlflow_server import MlflowServer, start


@pytest.fixture(scope="session")
def second_mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = start(tmp_path_factory.mktemp("mlflow-server-2"))
    try:
        yield server
    finally:
        server.stop()
