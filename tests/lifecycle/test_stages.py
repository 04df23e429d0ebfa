"""The policy of a stage: the config it works under, the stage it requires, and the approval it needs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.config.model import Criterion
from mlops_bot.errors import EXIT_NEGATIVE, UsageError
from mlops_bot.lifecycle.approvals import Approval, record_approval
from mlops_bot.lifecycle.stages import (
    StageRefused,
    check_approval,
    check_requires,
    entry_stage,
    stage_config,
    stage_named,
    stage_targets,
)
from mlops_bot.registry import tags
from mlops_bot.registry.base import Registry
from tests.helpers.registries import add_version
from tests.helpers.stages import write_staged


def test_stage_config_judges_and_moves_the_stage(tmp_path: Path) -> None:
    config = write_staged(tmp_path, "demo")
    production = stage_named(config, "production")
    staged = stage_config(config, production)
    assert staged.compare.champion.alias == "production"
    assert staged.compare.criteria == (Criterion(metric="accuracy", threshold=0.85),)
    assert (staged.promote.alias, staged.promote.previous_alias) == ("production", "previous-production")
    assert staged.deploy == config.deploy  # whole: its secret names guard every command deploy
    assert stage_targets(config, production) == ("production-record",)
    staging = entry_stage(config)
    assert staging.alias == "staging" and stage_config(config, staging).compare.criteria == config.compare.criteria
    assert StageRefused("x").exit_code == EXIT_NEGATIVE
    with pytest.raises(UsageError, match=r"--stage prodution: ml.yaml has no such stage; did you mean 'production'\?"):
        stage_named(config, "prodution")


@pytest.mark.parametrize("kind", ["local", pytest.param("mlflow-tag-aliases", marks=pytest.mark.mlflow)])
def test_requires_and_approval(kind: str, registry_factory: Callable[..., Registry], unique: Callable[[str], str],
                               tmp_path: Path) -> None:
    config = write_staged(tmp_path / "p", unique("stages"))
    registry = registry_factory(kind)
    name, number = config.model.name, add_version(registry, config, tmp_path)
    production = stage_named(config, "production")
    version = registry.get_model_version(name, number)
    with pytest.raises(StageRefused) as refused:
        check_requires(config, registry, version, production)
    assert str(refused.value) == (f"v{number} cannot reach production: it has not reached staging (promote it there "
                                  f"first: mlops-bot promote --stage staging --version {number})")
    check_requires(config, registry, version, entry_stage(config))  # the entry stage requires none
    registry.set_model_version_tag(name, number, tags.stage_reached("staging"), "2026-12-06T10:00:00+00:00")
    check_requires(config, registry, version, production)  # read afresh: the stale `version` does not matter
    registry.set_model_version_tag(name, number, tags.ROLLED_BACK, "latency (2026-12-06T11:00:00+00:00, back to v0)")
    with pytest.raises(StageRefused, match="it was rolled back"):
        check_requires(config, registry, version, production)

    with pytest.raises(StageRefused) as refused:
        check_approval(version, production)
    assert str(refused.value) == (f"v{number} needs approval for production (from someone with maintain or above: "
                                  f"comment `/mlops-bot approve v{number} production`)")
    assert check_approval(version, entry_stage(config)) is None
    record_approval(config, registry, version, "production", Approval("carol", "comment", "https://c/1", "write"))
    with pytest.raises(StageRefused, match=r"the approval on record \(by carol, write, via comment\) does not meet"):
        check_approval(registry.get_model_version(name, number), production)
    record_approval(config, registry, version, "production", Approval("bob", "comment", "https://c/2", "admin"))
    approval = check_approval(registry.get_model_version(name, number), production)
    assert approval is not None and (approval.by, approval.role) == ("bob", "admin")
