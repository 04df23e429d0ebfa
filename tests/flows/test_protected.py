"""A protected alias moved by hand (registry.set_alias, outside mlops-bot's promotion path) is flagged by `status` and
closes the `gate`, until the bot moves it (or adopts the holder) again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.config.model import Config
from mlops_bot.flows.gate import check_gate
from mlops_bot.flows.promote import promote_version
from mlops_bot.flows.rollback import rollback
from mlops_bot.flows.status import collect
from mlops_bot.lifecycle.approvals import Approval, record_approval
from mlops_bot.lifecycle.history import Mover, latest_move, read_moves
from mlops_bot.lifecycle.stages import stage_config, stage_named
from mlops_bot.registry import open_registry
from mlops_bot.registry.base import Registry
from tests.helpers.registries import add_version
from tests.helpers.stages import project_over, write_staged

ALICE = Mover("alice", "https://ci.example/runs/1")


def in_production(config: Config, registry: Registry, workdir: Path) -> str:
    """A version promoted by the bot to staging, approved, then to production."""
    project, name = project_over(config, registry), config.model.name
    version = add_version(registry, config, workdir, 0.9)
    promote_version(project, version, "staging", ALICE)
    record_approval(config, registry, registry.get_model_version(name, version), "production",
                    Approval("bob", "comment", "https://forge.example/pr/1#c1", "maintain"))
    assert promote_version(project, version, "production", ALICE)[0].promoted
    return version


@pytest.mark.parametrize("kind", ["local", pytest.param("mlflow-tag-aliases", marks=pytest.mark.mlflow)])
def test_a_hand_move_is_flagged_until_the_bot_moves_it_back(kind: str, registry_factory: Callable[..., Registry],
                                                           unique: Callable[[str], str], tmp_path: Path) -> None:
    config = write_staged(tmp_path / "p", unique("protected"))
    registry = registry_factory(kind)
    name = config.model.name
    assert config.promote.protected == ("production",)  # it needs an approval
    good = in_production(config, registry, tmp_path)
    assert collect(config, registry, 5)["protected"] == []
    assert check_gate(config, registry, "production").is_open

    other = add_version(registry, config, tmp_path, 0.95)
    registry.set_alias(name, "production", other)  # by hand, outside the bot
    recorded = latest_move(read_moves(registry, name), "production")
    assert recorded is not None
    detail = (f"production points at v{other}, but mlops-bot last moved it to v{good} ({recorded.at} by alice): it "
              f"was moved outside mlops-bot's promotion path; move it back with `mlops-bot rollback --stage "
              f"production --to {good}` or promote through mlops-bot")
    assert collect(config, registry, 5)["protected"] == [
        {"alias": "production", "holder": other, "recorded": good, "detail": detail}]
    gate = check_gate(config, registry, "production")
    assert not gate.is_open and gate.reasons == (detail,)
    assert not check_gate(config, registry, version=other).is_open  # the version holds the protected alias
    assert check_gate(config, registry, "staging").is_open  # staging is not protected

    rollback(stage_config(config, stage_named(config, "production")), registry, good, "moved by hand", ALICE)
    assert collect(config, registry, 5)["protected"] == []
    assert check_gate(config, registry, "production").is_open


def test_status_and_gate_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_staged(tmp_path / "p", "demo")
    registry = open_registry("local", config.root)
    held = add_version(registry, config, tmp_path, 0.9)
    registry.set_alias("demo", "production", held)  # never moved by the bot: no record at all

    def cli(*args: str) -> int:
        return main(["-C", str(config.root), *args])

    assert cli("status", "--json") == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["stages"] == {"staging": None, "production": held}
    [found] = doc["protected"]
    assert (found["alias"], found["holder"], found["recorded"]) == ("production", held, None)
    assert "mlops-bot has no record of moving it" in found["detail"] and found["detail"] in captured.err
    assert cli("status") == 0
    assert f"warning: production points at v{held}, but mlops-bot has no record" in capsys.readouterr().out
    assert cli("gate", "--alias", "production") == 1
    assert "no record of moving it" in capsys.readouterr().err
    assert cli("rollback", "--stage", "production", "--to", held, "--no-deploy") == 0  # adopt it, on purpose
    assert cli("status", "--json") == 0
    assert json.loads(capsys.readouterr().out)["protected"] == []
    assert cli("gate", "--alias", "production") == 0
    [move] = [m for m in read_moves(registry, "demo") if m.alias == "production"]
    assert move.version == held and move.reason.startswith("rollback: ")
