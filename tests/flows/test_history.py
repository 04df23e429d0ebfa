"""`history`: which version held an alias at any time, who moved it and why, and the deploys while it held it,
across promote -> promote -> rollback; from the registry's records and the audit log."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.config.model import Config
from mlops_bot.errors import UsageError
from mlops_bot.flows.history import collect, holder_document, parse_time
from mlops_bot.flows.promote import promote_version
from mlops_bot.flows.rollback import rollback_stage
from mlops_bot.lifecycle.history import Mover, iso, read_moves
from mlops_bot.registry import open_registry
from mlops_bot.registry.base import Registry
from tests.helpers.registries import add_version
from tests.helpers.stages import holder, project_over, write_staged


def three_moves(config: Config, registry: Registry, workdir: Path) -> tuple[str, str, list[int]]:
    """v1 then v2 promoted to staging by alice, then staging rolled back to v1 by carol: (v1, v2, the stamps)."""
    project = project_over(config, registry)
    first, second = add_version(registry, config, workdir, 0.8), add_version(registry, config, workdir, 0.9)
    promote_version(project, first, "staging", Mover("alice", "https://ci.example/runs/1"))
    time.sleep(0.01)
    promote_version(project, second, "staging", Mover("alice", "https://ci.example/runs/2"))
    time.sleep(0.01)
    rollback_stage(project, "staging", Mover("carol", "https://forge.example/pr/3#c9"), "latency spike")
    stamps = [m.stamp for m in read_moves(registry, config.model.name) if m.alias == "staging"]
    return first, second, stamps


@pytest.mark.parametrize("kind", ["local", pytest.param("mlflow-tag-aliases", marks=pytest.mark.mlflow)])
def test_the_holder_at_any_time(kind: str, registry_factory: Callable[..., Registry], unique: Callable[[str], str],
                                tmp_path: Path) -> None:
    config = write_staged(tmp_path / "p", unique("history"))
    registry = registry_factory(kind)
    first, second, (t1, t2, t3) = three_moves(config, registry, tmp_path)
    assert t1 < t2 < t3 and holder(registry, config.model.name, "staging") == first
    versions = registry.search_model_versions(config.model.name)

    def held(stamp: int) -> str | None:
        return holder_document(config, versions, "staging", stamp)["version"]  # type: ignore[no-any-return]

    assert [held(t1 - 1), held((t1 + t2) // 2), held((t2 + t3) // 2), held(t3 + 60_000)] == [
        None, first, second, first]
    doc = holder_document(config, versions, "staging", (t2 + t3) // 2)
    assert doc["move"]["by"] == "alice" and doc["move"]["previous"] == first and doc["move"]["verdict"] == "pass"
    assert [(d["target"], d["status"]) for d in doc["move"]["deploys"]] == [("staging-record", "succeeded")]
    moves = collect(config, versions, "staging")
    assert [(m["version"], m["by"]) for m in moves] == [(first, "alice"), (second, "alice"), (first, "carol")]
    assert moves[2]["reason"].startswith("rollback: latency spike") and moves[2]["where"].endswith("#c9")
    assert all(len(m["deploys"]) == 1 for m in moves)  # each stay on staging redeployed it once
    assert holder_document(config, versions, "production", t3)["detail"].startswith("no version held production")


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_staged(tmp_path / "p", "demo")
    registry = open_registry("local", config.root)
    first, second, (t1, t2, t3) = three_moves(config, registry, tmp_path)

    def cli(*args: str) -> int:
        return main(["-C", str(config.root), *args])

    assert cli("history", "--alias", "staging", "--at", iso((t2 + t3) // 2), "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["alias"], doc["version"], doc["move"]["by"]) == ("staging", second, "alice")
    assert cli("history", "--alias", "staging", "--at", iso(t3 + 1)) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"staging at {iso(t3 + 1)}: v{first}, moved there {iso(t3)} by carol from "
                           "https://forge.example/pr/3#c9\nwhy: rollback: latency spike")
    assert "deploys: staging-record=succeeded" in text
    assert cli("history", "--at", iso(t1 - 1)) == 1  # --at alone asks about promote.alias: the entry stage
    assert capsys.readouterr().out.startswith("no version held staging at ")
    assert cli("history") == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split() == ["time", "alias", "version", "previous", "by", "why", "deploys"] and len(rows) == 4
    assert rows[3].split()[:5] == [iso(t3), "staging", f"v{first}", f"v{second}", "carol"]
    assert cli("history", "--json") == 0
    assert [m["version"] for m in json.loads(capsys.readouterr().out)["moves"]] == [first, second, first]
    assert cli("history", "--alias", "previous-staging", "--json") == 0  # the rollback kept v2 reachable
    assert [m["version"] for m in json.loads(capsys.readouterr().out)["moves"]] == [first, second]
    assert cli("history", "--at", "yesterday") == 2
    assert "--at 'yesterday': not an ISO 8601 time; write it like 2026-12-06T10:00:00Z" in capsys.readouterr().err


def test_times_are_iso_8601() -> None:
    assert parse_time("2026-12-06T10:00:00Z") == parse_time("2026-12-06T11:00:00+01:00") == 1_796_551_200_000
    assert parse_time("2026-12-06") == 1_796_515_200_000  # a date: its midnight, UTC
    with pytest.raises(UsageError, match="--at '12/06/2026'"):
        parse_time("12/06/2026")
