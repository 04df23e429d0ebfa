"""`mlops-bot drift` against the real mlflow server: the reference downloaded from the champion's run outs through
the server, the monitoring run in the champion's experiment with its tags, metrics and report read back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.registry import tags
from mlops_bot.registry.base import Registry
from tests.helpers.drift_project import drift_json, table, train_champion, write_project
from tests.servers.mlflow_server import MlflowServer

pytestmark = pytest.mark.mlflow


def test_drift_against_the_mlflow_server(tmp_path: Path, mlflow_server: MlflowServer,
                                         registry_factory: Callable[..., Registry],
                                         unique: Callable[[str], str]) -> None:
    model = unique("drift")
    root = write_project(tmp_path / "p", model, uri=mlflow_server.uri)
    registry = registry_factory("mlflow")
    version, champion_run = train_champion(root, registry)
    runs_before = len(registry.search_runs([registry.get_run(champion_run).experiment_id]))

    (root / "data" / "current.csv").write_text("a,b\n1,2\n")  # bad input: nothing is logged
    assert drift_json(root)[0] == 3
    assert len(registry.search_runs([registry.get_run(champion_run).experiment_id])) == runs_before

    (root / "data" / "current.csv").write_text(table(200, offset=0.25))
    code, calm = drift_json(root)
    (root / "data" / "current.csv").write_text(table(200, shift=1.5))
    drifted_code, drifted = drift_json(root)
    assert (code, drifted_code) == (0, 1)
    for doc, flag in ((calm, "false"), (drifted, "true")):
        run = registry.get_run(str(doc["run_id"]))
        assert run.status == "FINISHED" and run.experiment_id == registry.get_run(champion_run).experiment_id
        assert run.tags[tags.ROLE] == "monitor" and run.tags[tags.MONITOR_VERSION] == version
        assert run.tags[tags.MONITOR_CHAMPION_RUN] == champion_run and run.tags[tags.DRIFT_DETECTED] == flag
        assert run.tags[tags.DRIFT_FINDING] == doc["finding_id"]
        assert run.metrics["drift.drifted"] == (1.0 if flag == "true" else 0.0)
        assert run.params["reference"] == f"outs/build/train.csv of run {champion_run}"
        assert registry.list_artifacts(run.run_id, "drift") == ["drift.json", "drift.md"]
    assert [f["name"] for f in drifted["result"]["features"] if f["drifted"]] == ["x"]  # type: ignore[index]
