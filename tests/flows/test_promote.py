"""Register, promote and deploy on the embedded store: the whole life of a champion."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.config.model import Config
from mlops_bot.deploy import DeployFailed
from mlops_bot.errors import NotFound
from mlops_bot.flows.compare import compare_registry
from mlops_bot.flows.promote import promote_flow
from mlops_bot.registry import open_registry, tags
from mlops_bot.registry.base import Registry, RunStatus
from mlops_bot.registry.local.store import LocalRegistry
from tests.helpers.projects import LOCAL, promote_run
from tests.helpers.registries import make_run


def snapshot(registry: Registry, config: Config) -> dict[str, object]:
    versions = registry.search_model_versions(config.model.name)
    return {v.version: (v.aliases, {k: val for k, val in v.tags.items() if not k.endswith(".at")}) for v in versions}


def test_champion_life_on_the_embedded_store(project: Callable[..., Config], tmp_path: Path) -> None:
    config = project()
    registry = open_registry("local", config.root)
    first = make_run(registry, config, 0.80, tmp_path)
    assert promote_run(config, registry, first) == (True, False, "1")
    v1 = registry.get_model_version("demo", "1")
    assert v1.aliases == ("champion",)
    assert v1.tags[tags.VERDICT] == "pass" and v1.tags[tags.COMPARED_WITH] == "bootstrap"
    assert v1.tags[tags.RUN_ID] == first and v1.tags[tags.COMMIT] == "c0ffee"
    assert v1.source.endswith("/model") and v1.run_id == first

    worse = make_run(registry, config, 0.805, tmp_path)  # better, but by less than min_absolute_change
    assert promote_run(config, registry, worse) == (False, False, "2")
    assert registry.get_version_by_alias("demo", "champion").version == "1"  # type: ignore[union-attr]
    assert registry.get_model_version("demo", "2").tags[tags.VERDICT] == "fail"

    better = make_run(registry, config, 0.90, tmp_path)
    assert promote_run(config, registry, better) == (True, False, "3")
    assert registry.get_version_by_alias("demo", "champion").version == "3"  # type: ignore[union-attr]
    assert registry.get_version_by_alias("demo", "previous-champion").version == "1"  # type: ignore[union-attr]
    assert registry.get_model_version("demo", "1").tags[tags.REPLACED_BY] == "3"
    assert (config.root / "deployed.txt").read_text().split() == ["1", "3"]
    assert registry.get_model_version("demo", "3").tags[tags.deploy_status("record")] == "succeeded"


def test_promote_twice_changes_nothing(project: Callable[..., Config], tmp_path: Path) -> None:
    config = project()
    registry = open_registry("local", config.root)
    run = make_run(registry, config, 0.9, tmp_path)
    promote_run(config, registry, run)
    before = snapshot(registry, config)
    assert promote_run(config, registry, run) == (False, True, "1")
    assert snapshot(registry, config) == before
    assert (config.root / "deployed.txt").read_text().split() == ["1"]


def test_failed_deploy_keeps_the_alias_and_a_rerun_retries(project: Callable[..., Config], tmp_path: Path) -> None:
    config = project()
    registry = open_registry("local", config.root)
    (config.root / "fail-deploy").write_text("")
    run = make_run(registry, config, 0.9, tmp_path)
    with pytest.raises(DeployFailed) as caught:
        promote_run(config, registry, run)
    assert caught.value.exit_code == 3
    assert registry.get_version_by_alias("demo", "champion").version == "1"  # type: ignore[union-attr]
    assert registry.get_model_version("demo", "1").tags[tags.deploy_status("record")] == "failed"
    (config.root / "fail-deploy").unlink()
    assert promote_run(config, registry, run) == (False, True, "1")
    assert registry.get_model_version("demo", "1").tags[tags.deploy_status("record")] == "succeeded"


def test_champion_changed_since_the_comparison_is_compared_again(project: Callable[..., Config],
                                                                 tmp_path: Path) -> None:
    config = project(deploy="")
    registry = open_registry("local", config.root)
    promote_run(config, registry, make_run(registry, config, 0.70, tmp_path))
    good, better = make_run(registry, config, 0.80, tmp_path), make_run(registry, config, 0.90, tmp_path)
    stale = compare_registry(config, registry, good)  # judged against v1 (0.70): passes
    assert stale.passed
    promote_run(config, registry, better)  # meanwhile v2 (0.90) became champion
    promotion, _ = promote_flow(config, registry, stale, LOCAL, run_given=True)
    assert not promotion.promoted and promotion.decision.champion is not None
    assert promotion.decision.champion.version == "2"
    assert registry.get_version_by_alias("demo", "champion").version == "2"  # type: ignore[union-attr]
    assert registry.get_model_version("demo", "3").tags[tags.VERDICT] == "fail"
    assert registry.get_model_version("demo", "3").tags[tags.COMPARED_WITH] == "2"


def test_promote_command_exit_codes(project: Callable[..., Config], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_bot.cli import main

    config = project(deploy="")
    registry = open_registry("local", config.root)
    strong, weak = make_run(registry, config, 0.9, tmp_path), make_run(registry, config, 0.4, tmp_path)
    assert main(["-C", str(config.root), "promote", "--run", strong, "--json"]) == 0
    assert main(["-C", str(config.root), "promote", "--run", weak]) == 1
    assert '"promoted": true' in capsys.readouterr().out


def incomplete_run(registry: Registry, config: Config, status: RunStatus, model: str | None) -> str:
    """A run with passing metrics, ended with `status`; `model`: "file" uploads one, "empty" leaves an empty
    model directory in the embedded store, None uploads nothing."""
    experiment = registry.get_or_create_experiment(config.tracking.experiment)
    run = registry.create_run(experiment.experiment_id, "incomplete", {"mlflow.source.git.commit": "c0ffee"})
    registry.log_batch(run.run_id, metrics={"accuracy": 0.9})
    if model == "file":
        (config.root / "m").mkdir(exist_ok=True)
        (config.root / "m" / "model.txt").write_text("weights\n")
        registry.upload_artifacts(run.run_id, config.root / "m", "model")
    elif model == "empty":
        assert isinstance(registry, LocalRegistry)
        (registry.artifact_root / run.run_id / "model").mkdir(parents=True)
    if status != "RUNNING":
        registry.update_run(run.run_id, status)
    return run.run_id


@pytest.mark.parametrize(("status", "model", "said"), [
    ("RUNNING", "file", "is RUNNING, not FINISHED"),
    ("FAILED", "file", "is FAILED, not FINISHED"),
    ("FINISHED", None, "has no model: its artifact 'model' is missing or empty"),
    ("FINISHED", "empty", "has no model: its artifact 'model' is missing or empty"),
])
def test_only_a_finished_complete_run_is_promoted(project: Callable[..., Config], status: RunStatus,
                                                  model: str | None, said: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_bot.cli import main

    config = project(deploy="")
    registry = open_registry("local", config.root)
    run_id = incomplete_run(registry, config, status, model)
    assert main(["-C", str(config.root), "promote", "--run", run_id]) == 3
    assert f"run {run_id} {said}" in capsys.readouterr().err
    with pytest.raises(NotFound):  # nothing half-registered: not even the registered model
        registry.get_registered_model(config.model.name)
