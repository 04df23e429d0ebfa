"""Release gate, rollback and status on the embedded store, through the real command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.config.model import Config
from mlops_bot.registry import open_registry, tags
from mlops_bot.registry.base import Registry
from tests.helpers.projects import promote_run
from tests.helpers.registries import make_run


@pytest.fixture
def history(project: Callable[..., Config], tmp_path: Path) -> tuple[Config, Registry]:
    """v1 (0.8) champion, then v2 (0.805) refused, then v3 (0.9) champion with v1 as previous."""
    config = project()
    registry = open_registry("local", config.root)
    for accuracy in (0.8, 0.805, 0.9):
        promote_run(config, registry, make_run(registry, config, accuracy, tmp_path))
    return config, registry


def cli(config: Config, *args: str) -> int:
    return main(["-C", str(config.root), *args])


def test_gate(history: tuple[Config, Registry], capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = history
    assert cli(config, "gate") == 0
    assert cli(config, "gate", "--version", "3") == 0
    assert cli(config, "gate", "--version", "1") == 0  # not champion, but it passed its decision
    assert cli(config, "gate", "--version", "2") == 1
    assert "v2 is not the champion (v3) and its recorded verdict is 'fail'" in capsys.readouterr().err
    assert cli(config, "gate", "--require-tag", f"{tags.COMMIT}=c0ffee") == 0
    assert cli(config, "gate", "--require-tag", "approved=yes", "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"model": "demo", "alias": "champion", "version": "3", "open": False,
                   "reasons": ["tag approved must be 'yes' but is missing"]}
    assert cli(config, "gate", "--alias", "nobody") == 1
    assert "no version of demo holds the alias 'nobody'" in capsys.readouterr().err
    assert cli(config, "gate", "--require-tag", "broken") == 2


def test_rollback_restores_previous_and_records_why(history: tuple[Config, Registry],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config, registry = history
    assert cli(config, "rollback", "--reason", "latency spike in prod") == 0
    assert registry.get_version_by_alias("demo", "champion").version == "1"  # type: ignore[union-attr]
    assert registry.get_version_by_alias("demo", "previous-champion").version == "3"  # type: ignore[union-attr]
    assert "latency spike in prod" in registry.get_model_version("demo", "3").tags[tags.ROLLED_BACK]
    assert (config.root / "deployed.txt").read_text().split() == ["1", "3", "1"]  # redeployed
    assert cli(config, "gate", "--version", "3") == 1  # a rolled-back version does not ship
    assert cli(config, "rollback") == 2  # the previous one was rolled back itself: say which
    assert "was itself rolled back" in capsys.readouterr().err
    assert cli(config, "rollback", "--to", "3", "--reason", "false alarm") == 0
    assert registry.get_version_by_alias("demo", "champion").version == "3"  # type: ignore[union-attr]
    assert cli(config, "gate") == 0


def test_status_table_and_json(history: tuple[Config, Registry], capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = history
    assert cli(config, "status", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["champion"], doc["previous"]) == ("3", "1")
    assert [(v["version"], v["verdict"]) for v in doc["versions"]] == [("3", "pass"), ("2", "fail"), ("1", "pass")]
    assert doc["versions"][0]["deployments"] == {"record": "succeeded"}
    assert cli(config, "status") == 0
    table = capsys.readouterr().out
    assert "demo: champion v3, previous v1" in table
    assert "v2       -                   fail" in table or ("v2" in table and "fail" in table)


def test_status_and_gate_before_any_version(project: Callable[..., Config],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = project()
    assert cli(config, "status") == 0
    assert "no versions registered yet" in capsys.readouterr().out
    assert cli(config, "gate") == 1
