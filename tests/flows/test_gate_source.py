"""`gate` never opens for a version whose model cannot be listed in its run's artifacts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.config.model import Config
from mlops_bot.registry import open_registry
from mlops_bot.registry.local.store import LocalRegistry
from tests.helpers.projects import promote_run
from tests.helpers.registries import make_run


def gate(config: Config, *args: str) -> int:
    return main(["-C", str(config.root), "gate", *args])


def test_gate_closes_when_the_champions_artifacts_are_gone(project: Callable[..., Config], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = project(deploy="")
    registry = open_registry("local", config.root)
    assert isinstance(registry, LocalRegistry)
    run_id = make_run(registry, config, 0.9, tmp_path)
    promote_run(config, registry, run_id)
    assert gate(config) == 0
    capsys.readouterr()

    shutil.rmtree(registry.artifact_root / run_id / "model")
    assert gate(config, "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["open"] is False and doc["version"] == "1"
    (reason,) = doc["reasons"]
    assert reason.startswith("the source file://") and reason.endswith(f"of v1 is missing or empty in run {run_id}")

    (registry.artifact_root / run_id / "model").mkdir()  # an empty directory lists no file either
    assert gate(config, "--version", "1", "--require-tag", "approved=yes") == 1
    err = capsys.readouterr().err
    assert "tag approved must be 'yes' but is missing" in err and f"is missing or empty in run {run_id}" in err


def test_gate_closes_for_a_source_outside_its_run(project: Callable[..., Config], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = project(deploy="")
    registry = open_registry("local", config.root)
    run_id = make_run(registry, config, 0.9, tmp_path)
    registry.get_or_create_registered_model(config.model.name)
    version = registry.create_model_version(config.model.name, "s3://user:key@bucket/model", run_id).version
    registry.set_alias(config.model.name, "champion", version)
    assert gate(config) == 1
    err = capsys.readouterr().err
    assert f"the source s3://bucket/model of v{version} is not in the artifacts of its run {run_id}" in err
    assert "key@" not in err
