"""Session-wide fixtures: the real `mlflow server` (started once, only when a test asks for it) and
fresh registries of each kind."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.registry.base import Capabilities, Registry
from tests.servers.mlflow_server import MlflowServer, start

# Small budgets keep failing tests fast; the real server answers well within them.
TEST_RETRY = {"total_seconds": 10.0, "initial_wait": 0.01, "max_wait": 0.2, "retry_after_cap": 0.5,
              "timeout": 10.0}
REGISTRY_KINDS = ("local", "mlflow", "mlflow-tag-aliases")


# A bug in an event emit raises in tests (in production it is logged and the flow goes on); subprocesses
# started by tests inherit it.
os.environ["MLOPS_BOT_EVENTS_STRICT"] = "1"


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
    """`make(kind, **options)`: a fresh Registry; kind is local, mlflow, or mlflow-tag-aliases (the real
    server with aliases and version search forced off, exercising the fallbacks). Closed at teardown."""
    made: list[Registry] = []

    def make(kind: str, **options: Any) -> Registry:
        registry: Registry
        if kind == "local":
            from mlops_bot.registry.local.store import LocalRegistry

            registry = LocalRegistry(tmp_path / f"store-{len(made)}" / ".mlops-bot")
        else:
            from mlops_bot.registry.mlflow.client import MlflowRegistry
            from mlops_bot.registry.mlflow.http import RetryPolicy

            server: MlflowServer = request.getfixturevalue("mlflow_server")
            if kind == "mlflow-tag-aliases":
                options.setdefault("capabilities", Capabilities(aliases=False, version_search=False))
            options.setdefault("retry", RetryPolicy(**TEST_RETRY))
            registry = MlflowRegistry(server.uri, options.pop("env", {}), **options)
        made.append(registry)
        return registry

    yield make
    for registry in made:
        registry.close()


@pytest.fixture(autouse=True)
def _fresh_event_buses() -> Iterator[None]:
    """What CI mode held back in one test is never handled in the next one (or at exit)."""
    yield
    from mlops_bot.events import bus as events

    events.forget_defaults()
