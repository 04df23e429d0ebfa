"""Polling tells new versions by their order, whatever their numbering: MLflow's 1, 2, 3 and GitLab's semantic
versions ('1.2.0', which a user may create beside the bot's); cursors written before keep working."""

from __future__ import annotations

import json
from collections.abc import Sequence

from mlops_bot.registry.base import ModelVersion, RegisteredModel, Run
from mlops_bot.registry.polling import events_since, version_key


class Versions:
    """A registry holding versions only: the PollSource of one model, newest first as registries list them."""

    def __init__(self, *versions: str) -> None:
        self.versions = list(versions)

    def poll_experiment_ids(self) -> list[str]:
        return []

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "", order_by: Sequence[str] = (),
                    max_results: int | None = None) -> list[Run]:
        return []

    def get_registered_model(self, name: str) -> RegisteredModel:
        return RegisteredModel(name)

    def search_model_versions(self, name: str, max_results: int | None = None) -> list[ModelVersion]:
        found = [ModelVersion(name, v, "s", "r", "READY", 0)
                 for v in sorted(self.versions, key=version_key, reverse=True)]
        return found if max_results is None else found[:max_results]


def created(source: Versions, cursor: str | None) -> tuple[list[str], str]:
    events, cursor = events_since(source, cursor, ["m"])
    return [e.version for e in events if e.type == "model_version.created"], cursor


def test_semantic_versions_are_ordered_and_new_ones_reported_once() -> None:
    source = Versions("1", "2")
    _, cursor = created(source, None)
    source.versions += ["2.1.0", "10"]
    found, cursor = created(source, cursor)
    assert found == ["2.1.0", "10"]
    assert created(source, cursor)[0] == []
    source.versions.append("10.0.1")
    assert created(source, cursor)[0] == ["10.0.1"]


def test_a_cursor_written_before_semantic_versions_still_reads() -> None:
    source = Versions("1", "2", "3")
    _, cursor = created(source, None)
    doc = json.loads(cursor)
    doc["versions"] = {"m": 2}  # as cursors stored the newest number
    source.versions.append("4")
    assert created(source, json.dumps(doc))[0] == ["3", "4"]


def test_the_order_of_versions() -> None:
    assert sorted(["10", "2", "1.2.0", "draft", "1"], key=version_key) == ["draft", "1", "1.2.0", "2", "10"]


class Runs(Versions):
    """Finished runs in one experiment, as a tracking server lists them."""

    def __init__(self, runs: Sequence[Run]) -> None:
        super().__init__()
        self.runs = list(runs)

    def poll_experiment_ids(self) -> list[str]:
        return ["1"]

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "", order_by: Sequence[str] = (),
                    max_results: int | None = None) -> list[Run]:
        return list(self.runs)


def test_a_drift_checks_monitoring_run_is_not_a_finished_run_to_react_to() -> None:
    from mlops_bot.registry import tags

    source = Runs([])
    _, cursor = events_since(source, None, ["m"])
    now = int(json.loads(cursor)["polled"]) if cursor.startswith("{") else 0
    stamp = max(now, 1) + 1000
    training = Run("a" * 32, "1", "FINISHED", stamp - 10, stamp, "a", tags={tags.CONFIG_DIGEST: "d",
                                                                         tags.PIPELINE_KEY: "k"})
    monitoring = Run("b" * 32, "1", "FINISHED", stamp - 10, stamp, "b",
                     tags={tags.ROLE: tags.ROLE_MONITOR, tags.DRIFT_FINDING: "f"})
    source.runs = [training, monitoring]
    events, _ = events_since(source, cursor, ["m"])
    assert [e.run_id for e in events if e.type == "run.finished"] == [training.run_id]
