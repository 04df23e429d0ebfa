"""Move records: their JSON within MLflow's tag limit, read back from a registry's versions in time order, and the
holder of an alias at any time."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.config import load_config
from mlops_bot.config.model import Config
from mlops_bot.lifecycle.history import (
    TAG_VALUE_LIMIT,
    Move,
    deploys_of,
    holder_at,
    latest_move,
    moves_of,
    read_moves,
    write_move,
)
from mlops_bot.registry import tags
from mlops_bot.registry.base import ModelVersion, Registry
from tests.helpers.projects import write_project
from tests.helpers.registries import add_version

APPROVAL = {"by": "bob", "via": "comment", "where": "https://example.invalid/c/1", "role": "maintain", "at": "x"}


def version(number: str, tag_map: dict[str, str]) -> ModelVersion:
    return ModelVersion(name="demo", version=number, source="s", run_id="r", status="READY", creation_timestamp=0,
                        tags=tag_map)


def test_a_record_is_compact_bounded_json() -> None:
    move = Move(alias="production", version="7", previous="6", stamp=1_796_551_200_000, by="alice",
                verdict="pass", decision="x" * 9000, decision_url="https://ci/" + "u" * 9000, approval=APPROVAL,
                where="https://ci/run/1")
    value = move.tag_value()
    assert len(value) <= TAG_VALUE_LIMIT and ": " not in value and ", " not in value
    doc = json.loads(value)
    assert doc["at"] == "2026-12-06T10:00:00.000Z" and len(doc["decision"]) == 1000
    assert doc["approval"]["by"] == "bob" and doc["reason"] == "promote" and doc["previous"] == "6"
    [back] = moves_of([version("7", {tags.move_tag("production", move.stamp): value})])
    assert (back.alias, back.version, back.previous, back.stamp, back.by) == ("production", "7", "6", move.stamp,
                                                                              "alice")


def test_holder_at_any_time_and_unreadable_records_skipped() -> None:
    def tag(alias: str, stamp: int, previous: str | None) -> tuple[str, str]:
        return tags.move_tag(alias, stamp), Move(alias, "?", previous, stamp).tag_value()

    v1 = version("1", dict([tag("staging", 1000, None), tag("staging", 3000, "2"), tag("production", 2500, None)]))
    v2 = version("2", dict([tag("staging", 2000, "1"), (tags.move_tag("staging", 2200), "{not json")]))
    moves = moves_of([v2, v1])
    assert [(m.alias, m.version, m.stamp) for m in moves] == [
        ("staging", "1", 1000), ("staging", "2", 2000), ("production", "1", 2500), ("staging", "1", 3000)]
    assert holder_at(moves, "staging", 999) is None
    assert [holder_at(moves, "staging", t).version for t in (1000, 1999, 2000, 2999, 3000, 10**13)] == [  # type: ignore[union-attr]
        "1", "1", "2", "2", "1", "1"]
    assert latest_move(moves, "production").version == "1"  # type: ignore[union-attr]
    assert latest_move(moves, "nope") is None


def test_deploys_from_the_audit_log_and_the_tags() -> None:
    v = version("3", {tags.deploy_status("web"): "succeeded", tags.deploy_tag("web", "at"): "2026-12-06T10:00:01.000Z",
                      tags.deploy_status("a.b"): "failed", tags.deploy_tag("a.b", "at"): "2026-12-06T10:00:02.000Z"})
    logged = [{"target": "a.b", "status": "failed", "at": "2026-12-06T09:00:00.000Z", "version": "3"},
              {"target": "a.b", "status": "succeeded", "at": "2026-12-06T10:00:02.000Z", "version": "3"},
              {"target": "web", "status": "succeeded", "at": "2026-12-06T08:00:00.000Z", "version": "4"}]
    assert [(d["target"], d["status"], d["from"]) for d in deploys_of(v, logged)] == [
        ("a.b", "failed", "audit log"), ("web", "succeeded", "registry"), ("a.b", "succeeded", "audit log")]


@pytest.mark.parametrize("kind", ["local", pytest.param("mlflow-tag-aliases", marks=pytest.mark.mlflow)])
def test_records_round_trip_through_a_registry(kind: str, registry_factory: Callable[..., Registry],
                                              unique: Callable[[str], str], tmp_path: Path) -> None:
    config: Config = write_project(tmp_path / "p", unique("hist"))
    config = load_config(config.path, env={})
    registry = registry_factory(kind)
    first, second = add_version(registry, config, tmp_path), add_version(registry, config, tmp_path, 0.95)
    write_move(registry, config.model.name, Move("champion", first, None, 1000, by="alice", approval=APPROVAL))
    write_move(registry, config.model.name, Move("champion", second, first, 2000, by="bob"))
    write_move(registry, config.model.name, Move("champion", second, first, 2000, by="bob"))  # a re-run: same tag
    moves = read_moves(registry, config.model.name)
    assert [(m.version, m.previous, m.by, m.stamp) for m in moves] == [(first, None, "alice", 1000),
                                                                        (second, first, "bob", 2000)]
    assert moves[0].approval == APPROVAL
    assert read_moves(registry, unique("never-registered")) == []


def test_the_mover_is_the_ci_actor_or_the_terminals_user(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_bot.ci.context import read_context
    from mlops_bot.lifecycle.history import Mover, mover_of
    from tests.helpers.ci_env import EVENTS

    monkeypatch.setenv("LOGNAME", "dana")
    assert mover_of(read_context({})) == Mover(by="dana", where="")
    ci = read_context({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "workflow_dispatch", "GITHUB_ACTOR": "maya",
                       "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "5", "GITHUB_SERVER_URL": "https://github.com",
                       "GITHUB_EVENT_PATH": str(EVENTS / "workflow_dispatch-payload.json")})
    assert mover_of(ci) == Mover(by="maya", where="https://github.com/o/r/actions/runs/5")
