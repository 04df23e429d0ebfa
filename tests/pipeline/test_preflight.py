"""`run` learns where the experiment keeps its artifacts before any step runs: a real `mlflow server` that
does not proxy artifacts (a file:// root) is refused with exit 2, nothing trained and no run created."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_bot.registry import open_registry
from tests.helpers.pipeline_project import cli as run_cli
from tests.helpers.pipeline_project import executions, make_project
from tests.servers.mlflow_server import MlflowServer, start

pytestmark = pytest.mark.mlflow


@pytest.fixture(scope="module")
def unproxied_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    root = tmp_path_factory.mktemp("mlflow-unproxied")
    server = start(root, ["--no-serve-artifacts", "--default-artifact-root", (root / "files").as_uri()])
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("existing", [False, True], ids=["new-experiment", "existing-experiment"])
def test_an_artifact_location_the_bot_cannot_write_stops_run_before_any_step(
        unproxied_server: MlflowServer, tmp_path: Path, counter: Path, existing: bool) -> None:
    experiment = f"unproxied-{tmp_path.name}"
    project = make_project(tmp_path / "project", uri=unproxied_server.uri, experiment=experiment)
    registry = open_registry(unproxied_server.uri, project)
    try:
        if existing:
            registry.get_or_create_experiment(experiment)
        done = run_cli(project, counter=counter)
        assert done.returncode == 2, done.stderr
        assert executions(counter) == []  # no step ran: nothing trained for nothing
        assert "file://" in done.stderr and "--serve-artifacts" in done.stderr and "Traceback" not in done.stderr
        found = registry.get_or_create_experiment(experiment)
        assert registry.search_runs([found.experiment_id]) == []
    finally:
        registry.close()


def test_the_proxied_server_and_the_embedded_store_pass_the_check(mlflow_server: MlflowServer, tmp_path: Path,
                                                                  counter: Path) -> None:
    for uri in (mlflow_server.uri, "local"):
        project = make_project(tmp_path / uri.replace("/", "_").replace(":", "_"), uri=uri,
                               experiment=f"proxied-{tmp_path.name}")
        done = run_cli(project, counter=counter)
        assert done.returncode == 0, done.stderr
    assert executions(counter) == ["prepare", "train", "evaluate"] * 2
