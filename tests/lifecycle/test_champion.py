"""The registry side of compare, on the embedded store and on a real mlflow server."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from mlops_bot.config.model import Significance
from mlops_bot.errors import DataError
from mlops_bot.flows.compare import compare_registry
from mlops_bot.lifecycle.champion import PROMOTED_TAG, earlier_champions, latest_run_id, resolve_champion
from mlops_bot.pipeline.lastrun import LastRun, workspace_key, write_last_run
from mlops_bot.registry import tags
from mlops_bot.registry.base import Registry, Run
from tests.helpers.decisions import ACCURACY, LATENCY, NOW, compare_of, make_config


@pytest.fixture(params=["local", pytest.param("mlflow", marks=pytest.mark.mlflow)])
def registry(request: pytest.FixtureRequest, registry_factory: Callable[..., Registry]) -> Registry:
    return registry_factory(request.param)


@pytest.fixture
def model(unique: Callable[[str], str]) -> str:
    return unique("iris")


def finished_run(registry: Registry, metrics: Mapping[str, float], params: Mapping[str, str] | None = None,
                 tags: Mapping[str, str] | None = None, experiment: str = "iris") -> str:
    exp = registry.get_or_create_experiment(experiment)
    run = registry.create_run(exp.experiment_id, tags=dict(tags or {}))
    registry.log_batch(run.run_id, params=params or {}, metrics=metrics)
    registry.update_run(run.run_id, "FINISHED", end_time=run.start_time + 1000)
    return run.run_id


def register(registry: Registry, model: str, metrics: Mapping[str, float], promoted: bool,
             params: Mapping[str, str] | None = None) -> str:
    registry.get_or_create_registered_model(model)
    run_id = finished_run(registry, metrics, params)
    marks = {PROMOTED_TAG: "2025-01-01T00:00:00Z"} if promoted else {}
    return registry.create_model_version(model, f"runs:/{run_id}/model", run_id, tags=marks).version


def test_no_champion_is_a_bootstrap(registry: Registry, model: str, tmp_path: Path) -> None:
    assert resolve_champion(registry, model, "champion") is None
    run_id = finished_run(registry, {"accuracy": 0.93, "latency_ms": 80.0},
                          tags={"mlflow.source.git.commit": "abc123", "mlops_bot.git.dirty": "false"})
    config = make_config(compare_of(ACCURACY, LATENCY), root=tmp_path, model=model)
    decision = compare_registry(config, registry, run_id, now=NOW)
    assert (decision.verdict, decision.bootstrap, decision.history) == ("pass", True, ())
    assert decision.challenger.lineage["commit"] == "abc123"
    assert decision.challenger.lineage["dirty"] == "false"


@pytest.mark.mlflow
def test_earlier_champions_are_read_in_one_search_whatever_their_number(
        registry_factory: Callable[..., Registry], model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = registry_factory("mlflow")
    made = [register(registry, model, {"accuracy": 0.8 + i / 100}, True) for i in range(12)]
    registry.set_alias(model, "champion", made[-1])
    champion = resolve_champion(registry, model, "champion")
    experiment = registry.get_or_create_experiment("iris").experiment_id
    read_one_by_one: list[str] = []
    real_get_run = registry.get_run

    def get_run(run_id: str) -> Run:
        read_one_by_one.append(run_id)
        return real_get_run(run_id)

    monkeypatch.setattr(registry, "get_run", get_run)
    history = earlier_champions(registry, model, 10, champion, [experiment])
    assert [h.version for h in history] == made[-10:]
    assert [h.metrics["accuracy"] for h in history] == [0.8 + i / 100 for i in range(2, 12)]
    assert read_one_by_one == []  # one runs/search for the nine earlier champions, no runs/get


def test_earlier_champions_and_verdict(registry: Registry, model: str, tmp_path: Path) -> None:
    v1 = register(registry, model, {"accuracy": 0.90, "latency_ms": 100.0}, True)
    register(registry, model, {"accuracy": 0.80, "latency_ms": 90.0}, False)  # never champion: not charted
    v3 = register(registry, model, {"accuracy": 0.92, "latency_ms": 101.0}, True, params={"C": "1.0"})
    registry.set_alias(model, "champion", v3)
    champion = resolve_champion(registry, model, "champion")
    assert champion is not None
    assert (champion.version, champion.metrics, champion.params) == \
        (v3, {"accuracy": 0.92, "latency_ms": 101.0}, {"C": "1.0"})
    assert champion.source == f"models:/{model}@champion"
    history = earlier_champions(registry, model, 10, champion)
    assert [h.version for h in history] == [v1, v3]
    assert history[0].metrics == {"accuracy": 0.90, "latency_ms": 100.0}
    assert [h.version for h in earlier_champions(registry, model, 1, champion)] == [v3]
    assert earlier_champions(registry, model, 0, champion) == []

    run_id = finished_run(registry, {"accuracy": 0.921, "latency_ms": 99.0}, params={"C": "0.5"})
    decision = compare_registry(make_config(compare_of(ACCURACY, LATENCY), root=tmp_path, model=model), registry,
                                run_id, now=NOW)
    assert decision.verdict == "fail"
    assert decision.criteria[0].reason == "accuracy 0.921 >= threshold 0.9; +0.001 vs champion v3 (0.92), needs +0.005"
    assert [p.name for p in decision.params_diff] == ["C"]
    assert [h.version for h in decision.history] == [v1, v3]


def test_latest_run_is_the_remembered_one_else_the_bots_newest(registry: Registry, tmp_path: Path,
                                                               unique: Callable[[str], str]) -> None:
    experiment = unique("exp")
    config = make_config(compare_of(ACCURACY), root=tmp_path)
    config = replace(config, tracking=replace(config.tracking, experiment=experiment))
    with pytest.raises(DataError, match=f"pipeline key .* in experiment '{experiment}' to compare"):
        latest_run_id(config, registry)
    key = workspace_key(config, tmp_path / ".mlops-bot")
    assert key is not None
    first = finished_run(registry, {"accuracy": 0.9}, tags={tags.PIPELINE_KEY: key}, experiment=experiment)
    time.sleep(0.01)  # distinct start times (ms) order the runs
    newest = finished_run(registry, {"accuracy": 0.91}, tags={tags.PIPELINE_KEY: key}, experiment=experiment)
    time.sleep(0.01)
    finished_run(registry, {"accuracy": 0.99}, experiment=experiment)  # a notebook's: never picked
    assert latest_run_id(config, registry) == newest
    write_last_run(tmp_path / ".mlops-bot", LastRun.of(config, key, first))
    assert latest_run_id(config, registry) == first
    write_last_run(tmp_path / ".mlops-bot", LastRun(first, key, "http://elsewhere", experiment))
    assert latest_run_id(config, registry) == newest  # remembered by another store: not ours


def test_significance_without_champion_predictions_is_an_error(registry: Registry, model: str,
                                                               tmp_path: Path) -> None:
    registry.set_alias(model, "champion", register(registry, model, {"accuracy": 0.90}, True))
    run_id = finished_run(registry, {"accuracy": 0.95})
    config = make_config(compare_of(ACCURACY, significance=Significance(("accuracy",))), root=tmp_path, model=model)
    with pytest.raises(DataError, match="--challenger-predictions and --champion-predictions were not given"):
        compare_registry(config, registry, run_id, now=NOW)
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "predictions.csv").write_text("row_id,y_true,y_pred\n1,a,a\n", encoding="utf-8")
    with pytest.raises(DataError, match="--challenger-predictions and --champion-predictions were not given"):
        compare_registry(config, registry, run_id, now=NOW)  # another run's predictions are not the workspace's
    write_last_run(tmp_path / ".mlops-bot", LastRun.of(config, "k", run_id))
    with pytest.raises(DataError, match="but --champion-predictions was not given"):
        compare_registry(config, registry, None, now=NOW)
