"""Promotion through stages: staging before production, production's approval and criteria, each stage's own
deploy targets, and a refusal that writes nothing; on the embedded store, the tag fallback of aliases and the real
mlflow server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.flows.history import collect, why
from mlops_bot.flows.promote import promote_version
from mlops_bot.lifecycle.approvals import Approval, record_approval
from mlops_bot.lifecycle.history import Mover, latest_move, read_moves
from mlops_bot.lifecycle.stages import StageRefused
from mlops_bot.registry import open_registry, tags
from mlops_bot.registry.base import Registry
from tests.helpers.registries import add_version, make_run
from tests.helpers.stages import deployed, holder, project_over, snapshot, write_staged

KINDS = ["local", pytest.param("mlflow-tag-aliases", marks=pytest.mark.mlflow),
         pytest.param("mlflow", marks=pytest.mark.mlflow)]
ALICE = Mover(by="alice", where="https://ci.example/runs/1")


@pytest.mark.parametrize("kind", KINDS)
def test_a_version_goes_through_the_stages_in_order(kind: str, registry_factory: Callable[..., Registry],
                                                    unique: Callable[[str], str], tmp_path: Path) -> None:
    config = write_staged(tmp_path / "p", unique("staged"))
    registry = registry_factory(kind)
    project, name = project_over(config, registry), config.model.name
    low = add_version(registry, config, tmp_path, 0.8)

    before = snapshot(registry, name)
    with pytest.raises(StageRefused) as refused:
        promote_version(project, low, "production", ALICE)
    assert str(refused.value) == (f"v{low} cannot reach production: it has not reached staging (promote it there "
                                  f"first: mlops-bot promote --stage staging --version {low})")
    assert snapshot(registry, name) == before and holder(registry, name, "production") is None

    promotion, results = promote_version(project, low, "staging", ALICE)
    assert promotion.promoted and holder(registry, name, "staging") == low
    assert [r.target for r in results] == ["staging-record"] and deployed(config.root) == [f"staging-{low}"]
    assert registry.get_model_version(name, low).tags[tags.stage_reached("staging")]

    before = snapshot(registry, name)
    with pytest.raises(StageRefused, match=f"v{low} needs approval for production"):
        promote_version(project, low, "production", ALICE)
    assert snapshot(registry, name) == before

    record_approval(config, registry, registry.get_model_version(name, low), "production",
                    Approval("bob", "comment", "https://forge.example/pr/1#c1", "maintain"))
    promotion, results = promote_version(project, low, "production", ALICE)  # 0.8: production asks 0.85
    assert promotion.outcome == "not_promoted" and results == []
    assert "accuracy" in promotion.reason and holder(registry, name, "production") is None

    high = add_version(registry, config, tmp_path, 0.9)
    promotion, _ = promote_version(project, high, "staging", ALICE)
    assert (promotion.promoted, promotion.replaced) == (True, low)
    record_approval(config, registry, registry.get_model_version(name, high), "production",
                    Approval("bob", "comment", "https://forge.example/pr/2#c1", "admin"))
    promotion, results = promote_version(project, high, "production", ALICE)
    assert promotion.promoted and holder(registry, name, "production") == high
    assert holder(registry, name, "staging") == high  # production's move leaves staging alone
    assert deployed(config.root) == [f"staging-{low}", f"staging-{high}", f"production-{high}"]
    moved = latest_move(read_moves(registry, name), "production")
    assert moved is not None and (moved.version, moved.previous, moved.by, moved.where, moved.verdict) == (
        high, None, "alice", ALICE.where, "pass")
    assert moved.approval is not None and moved.approval["by"] == "bob"

    [row] = collect(config, registry.search_model_versions(name), "production")
    assert why(row).endswith("; approved by bob via comment") and row["deploys"][0]["target"] == "production-record"
    again, results = promote_version(project, high, "production", ALICE)  # a re-run changes nothing
    assert again.already and [r.status for r in results] == ["skipped"]
    assert len([m for m in read_moves(registry, name) if m.alias == "production"]) == 1


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_staged(tmp_path / "p", "demo")
    registry = open_registry("local", config.root)
    run = make_run(registry, config, 0.9, tmp_path)

    def cli(*args: str) -> int:
        return main(["-C", str(config.root), *args])

    assert cli("promote", "--run", run, "--json") == 0  # a plain promote moves the entry stage
    doc = json.loads(capsys.readouterr().out)
    assert (doc["stage"], doc["version"], doc["promoted"], doc["refused"]) == ("staging", "1", True, None)
    assert cli("promote", "--stage", "production", "--version", "1", "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["promoted"] is False and doc["refused"].startswith("v1 needs approval for production")
    assert holder(registry, "demo", "production") is None
    assert cli("promote", "--stage", "production", "--run", run) == 2  # a later stage takes a version
    assert "name the version: --version N" in capsys.readouterr().err
    assert cli("promote", "--stage", "producton", "--version", "1") == 2
    assert "did you mean 'production'?" in capsys.readouterr().err
    assert cli("rollback", "--stage", "staging", "--json") == 2  # nothing before v1 on staging
    assert "no 'previous-staging' version" in capsys.readouterr().err
    assert deployed(config.root) == ["staging-1"]
