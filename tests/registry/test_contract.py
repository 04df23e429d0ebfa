"""One contract for every Registry: the embedded store, the real MLflow server, and the real server with
aliases and version search forced off (tag fallbacks). Every protocol operation is exercised."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.errors import InvalidParameter, NotFound, UsageError
from mlops_bot.registry import tags as names
from mlops_bot.registry.base import Capabilities, Registry, Run
from tests.helpers.registries import REGISTRY_KINDS

Names = Callable[[str], str]


# The vendor stand-ins take seconds a test (HTTP round trips, capability probes): the full tier runs them.
VENDORS = ("gitlab", "azureml", "databricks-uc")


@pytest.fixture(params=[*(pytest.param(kind, marks=[pytest.mark.mlflow] if kind != "local" else [])
                          for kind in REGISTRY_KINDS), *(pytest.param(v, marks=pytest.mark.slow) for v in VENDORS)])
def registry(request: pytest.FixtureRequest, registry_factory: Callable[..., Registry]) -> Registry:
    """Each implementation in turn, and the GitLab, Azure ML and Unity Catalog stand-ins; the remote ones page 3 items
    at a time."""
    kind: str = request.param
    return registry_factory(kind) if kind == "local" else registry_factory(kind, page_size=3)


def model_name(registry: Registry, name: str) -> str:
    """Unity Catalog names a model catalog.schema.model, in lower case, with no space; elsewhere `name` as it is."""
    from mlops_bot.registry.mlflow.unity import UnityRegistry

    return f"main.contract.{name.replace(' ', '_')}" if isinstance(registry, UnityRegistry) else name


def finished_run(registry: Registry, experiment_id: str, **tags: str) -> Run:
    run = registry.create_run(experiment_id, tags=tags)
    registry.update_run(run.run_id, "FINISHED")
    return registry.get_run(run.run_id)


def test_capabilities_and_tracking_uri(registry: Registry) -> None:
    assert isinstance(registry, Registry)
    assert isinstance(registry.capabilities, Capabilities)
    assert registry.capabilities.artifacts
    assert registry.tracking_uri.startswith(("http://", "sqlite:///"))


def test_experiment_get_or_create_is_idempotent(registry: Registry, unique: Names) -> None:
    first = registry.get_or_create_experiment(unique("exp"))
    again = registry.get_or_create_experiment(unique("exp"))
    other = registry.get_or_create_experiment(unique("other"))
    assert first == again
    assert first.name == unique("exp")
    assert other.experiment_id != first.experiment_id


def test_run_lifecycle(registry: Registry, unique: Names) -> None:
    exp = registry.get_or_create_experiment(unique("exp"))
    run = registry.create_run(exp.experiment_id, name="train", tags={"git.sha": "abc"})
    assert (run.status, run.end_time, run.name, run.experiment_id) == ("RUNNING", None, "train", exp.experiment_id)
    assert run.tags["git.sha"] == "abc"
    registry.log_batch(run.run_id, params={"C": "0.5", "seed": "1"}, metrics={"acc": 0.5, "loss": math.nan},
                       tags={"stage": "x"})
    stage = "y"
    if "/ml/mlflow" in registry.tracking_uri:  # GitLab keeps a run tag's first value; no fallback exists
        with pytest.raises(InvalidParameter, match="first value"):
            registry.log_batch(run.run_id, tags={"stage": "y"})
        stage = "x"
    registry.log_batch(run.run_id, params={"C": "0.5"}, metrics={"acc": 0.75}, tags={"stage": stage}, step=1)
    registry.update_run(run.run_id, "FINISHED")
    got = registry.get_run(run.run_id)
    assert got.status == "FINISHED"
    assert got.end_time is not None and got.end_time >= got.start_time
    assert dict(got.params) == {"C": "0.5", "seed": "1"}
    assert got.metrics["acc"] == 0.75  # the latest step wins
    assert math.isnan(got.metrics["loss"])
    assert got.tags["stage"] == stage and got.tags["git.sha"] == "abc"
    assert [(p.step, p.value) for p in registry.metric_history(run.run_id, "acc")] == [(0, 0.5), (1, 0.75)]
    assert registry.metric_history(run.run_id, "absent") == []


def test_metric_history_follows_every_page(registry: Registry, unique: Names) -> None:
    exp = registry.get_or_create_experiment(unique("exp"))
    run = registry.create_run(exp.experiment_id)
    for step in range(7):
        registry.log_batch(run.run_id, metrics={"loss": 1.0 / (step + 1)}, step=step)
    history = registry.metric_history(run.run_id, "loss")
    assert [(p.key, p.step, p.value) for p in history] == [("loss", s, 1.0 / (s + 1)) for s in range(7)]
    assert registry.get_run(run.run_id).metrics["loss"] == 1.0 / 7


def test_changing_a_param_is_refused(registry: Registry, unique: Names) -> None:
    exp = registry.get_or_create_experiment(unique("exp"))
    run = registry.create_run(exp.experiment_id)
    registry.log_batch(run.run_id, params={"C": "1"})
    with pytest.raises(InvalidParameter):
        registry.log_batch(run.run_id, params={"C": "2"})
    assert registry.get_run(run.run_id).params["C"] == "1"


def test_update_run_keeps_explicit_end_time_and_rejects_unknown_status(registry: Registry, unique: Names) -> None:
    exp = registry.get_or_create_experiment(unique("exp"))
    run = registry.create_run(exp.experiment_id)
    registry.update_run(run.run_id, "FAILED", end_time=run.start_time + 5)
    got = registry.get_run(run.run_id)
    assert (got.status, got.end_time) == ("FAILED", run.start_time + 5)
    with pytest.raises(UsageError, match="BOGUS"):
        registry.update_run(run.run_id, "BOGUS")


def test_unknown_run_is_not_found(registry: Registry) -> None:
    missing = "0" * 32
    for call in (lambda: registry.get_run(missing), lambda: registry.metric_history(missing, "acc"),
                 lambda: registry.log_batch(missing, params={"a": "b"}),
                 lambda: registry.update_run(missing, "FINISHED")):
        with pytest.raises(NotFound) as caught:
            call()
        assert "\n" not in str(caught.value)


def test_search_runs_filters_orders_and_pages(registry: Registry, unique: Names) -> None:
    exp = registry.get_or_create_experiment(unique("exp"))
    other = registry.get_or_create_experiment(unique("other"))
    made = []
    for index in range(8):  # more than the MLflow page size used here (3)
        run = registry.create_run(exp.experiment_id, tags={"kind": "even" if index % 2 == 0 else "odd"})
        registry.log_batch(run.run_id, params={"i": str(index)}, metrics={"score": float(index)})
        if index < 6:
            registry.update_run(run.run_id, "FINISHED")
        made.append(run.run_id)
    registry.create_run(other.experiment_id, tags={"kind": "even"})
    everything = registry.search_runs([exp.experiment_id])
    assert sorted(r.run_id for r in everything) == sorted(made)
    assert [r.start_time for r in everything] == sorted((r.start_time for r in everything), reverse=True)
    even_done = registry.search_runs([exp.experiment_id], "tags.kind = 'even' and attributes.status = 'FINISHED'")
    assert sorted(r.params["i"] for r in even_done) == ["0", "2", "4"]
    assert [r.run_id for r in registry.search_runs([exp.experiment_id], "params.i = '5'")] == [made[5]]
    assert len(registry.search_runs([exp.experiment_id], "status = 'RUNNING'")) == 2
    newest = registry.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=4)
    assert [r.run_id for r in newest] == [r.run_id for r in everything[:4]]
    both = registry.search_runs([exp.experiment_id, other.experiment_id], "tags.kind = 'even'")
    assert len(both) == 5
    assert registry.search_runs([]) == []


def test_get_runs_reads_several_runs_and_leaves_out_the_missing(registry: Registry, unique: Names) -> None:
    exp = registry.get_or_create_experiment(unique("exp"))
    elsewhere = registry.get_or_create_experiment(unique("elsewhere"))
    made = [finished_run(registry, exp.experiment_id, n=str(i)) for i in range(4)]
    registry.log_batch(made[0].run_id, metrics={"score": 0.5})
    outside = finished_run(registry, elsewhere.experiment_id)  # not in the experiment searched: read by id
    asked = [made[0].run_id, made[2].run_id, outside.run_id, "0" * 32, made[0].run_id]
    found = registry.get_runs(asked, [exp.experiment_id])
    assert sorted(found) == sorted({made[0].run_id, made[2].run_id, outside.run_id})
    assert found[made[0].run_id].metrics == {"score": 0.5} and found[made[2].run_id].tags["n"] == "2"
    assert registry.get_runs([], [exp.experiment_id]) == {}


def test_artifacts_round_trip(registry: Registry, unique: Names, tmp_path: Path) -> None:
    exp = registry.get_or_create_experiment(unique("exp"))
    run = registry.create_run(exp.experiment_id)
    source = tmp_path / "model"
    (source / "sub" / "deeper").mkdir(parents=True)
    files = {"model.pkl": b"\x00\x01binary\xff" * 100, "sub/conf.json": b'{"a": 1}',
             "sub/deeper/empty.txt": b"", "sub/deeper/with space.txt": b"spaced"}
    for relative, content in files.items():
        (source / relative).write_bytes(content)
    registry.upload_artifacts(run.run_id, source, "model")
    registry.upload_artifacts(run.run_id, source / "sub" / "conf.json", "extra")
    out = registry.download_artifacts(run.run_id, "model", tmp_path / "dl")
    assert out == tmp_path / "dl" / "model"
    got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert got == files
    single = registry.download_artifacts(run.run_id, "extra/conf.json", tmp_path / "one")
    assert single.read_bytes() == b'{"a": 1}'
    nested = registry.download_artifacts(run.run_id, "model/sub/deeper", tmp_path / "nested")
    assert sorted(p.name for p in nested.iterdir()) == ["empty.txt", "with space.txt"]
    with pytest.raises(NotFound):
        registry.download_artifacts(run.run_id, "model/absent.bin", tmp_path / "none")
    with pytest.raises(UsageError):
        registry.upload_artifacts(run.run_id, source, "../escape")


def test_list_artifacts(registry: Registry, unique: Names, tmp_path: Path) -> None:
    exp = registry.get_or_create_experiment(unique("exp"))
    run = registry.create_run(exp.experiment_id)
    assert registry.list_artifacts(run.run_id, "model") == []
    assert registry.list_artifacts(run.run_id) == []
    source = tmp_path / "model"
    (source / "sub" / "deeper").mkdir(parents=True)
    for relative in ("model.pkl", "sub/conf.json", "sub/deeper/with space.txt"):
        (source / relative).write_bytes(b"x")
    registry.upload_artifacts(run.run_id, source, "model")
    registry.upload_artifacts(run.run_id, source / "model.pkl", "extra")
    assert registry.list_artifacts(run.run_id, "model") == ["model.pkl", "sub/conf.json", "sub/deeper/with space.txt"]
    assert registry.list_artifacts(run.run_id, "model/sub") == ["conf.json", "deeper/with space.txt"]
    assert registry.list_artifacts(run.run_id) == ["extra/model.pkl", "model/model.pkl", "model/sub/conf.json",
                                                   "model/sub/deeper/with space.txt"]
    assert registry.list_artifacts(run.run_id, "absent") == []
    assert registry.list_artifacts(run.run_id, "model/model.pkl") == []  # a file is no directory
    with pytest.raises(NotFound):
        registry.list_artifacts("0" * 32, "model")


def test_registered_models_and_versions(registry: Registry, unique: Names) -> None:
    exp = registry.get_or_create_experiment(unique("exp"))
    runs = [finished_run(registry, exp.experiment_id) for _ in range(2)]
    name = model_name(registry, unique("model with spaces"))
    with pytest.raises(NotFound):
        registry.get_registered_model(name)
    assert registry.search_model_versions(name) == []
    model = registry.get_or_create_registered_model(name, description="iris")
    assert registry.get_or_create_registered_model(name) == model
    assert model.name == name and model.aliases == {}
    first = registry.create_model_version(name, f"runs:/{runs[0].run_id}/model", runs[0].run_id, tags={"k": "v"})
    again = registry.create_model_version(name, f"runs:/{runs[0].run_id}/model", runs[0].run_id, tags={"k": "v"})
    assert again == first and first.version == "1"
    versions = [first] + [registry.create_model_version(name, f"runs:/{r.run_id}/model", r.run_id)
                          for r in (runs[1], runs[1], runs[0])]
    assert [v.version for v in versions] == ["1", "2", "2", "1"]
    extra = [registry.create_model_version(name, f"runs:/{runs[0].run_id}/other{i}", runs[0].run_id).version
             for i in range(3)]
    assert extra == ["3", "4", "5"]
    listed = registry.search_model_versions(name)  # more than one page on MLflow here
    assert [v.version for v in listed] == ["5", "4", "3", "2", "1"]
    assert [v.version for v in registry.search_model_versions(name, max_results=4)] == ["5", "4", "3", "2"]
    assert listed[4].tags == {"k": "v"} and listed[4].run_id == runs[0].run_id
    assert listed[4].source == f"runs:/{runs[0].run_id}/model" and listed[4].status == "READY"
    registry.set_model_version_tag(name, "2", "validated", "true")
    assert registry.get_model_version(name, "2").tags == {"validated": "true"}
    with pytest.raises(NotFound):
        registry.get_model_version(name, "99")
    with pytest.raises(NotFound):
        registry.set_model_version_tag(name, "99", "a", "b")


def test_a_missing_version_asked_first_is_not_found(registry: Registry, unique: Names) -> None:
    """The first version a client asks for is where it learns the server's version form (GitLab's semver): a
    missing one is still NotFound, not the 400 MLflow gives the other form (`gate --version 9`, `promote --version`)."""
    name = model_name(registry, unique("model"))
    registry.get_or_create_registered_model(name)
    with pytest.raises(NotFound):
        registry.get_model_version(name, "9")


def test_model_name_with_slash_is_a_clear_error(registry: Registry) -> None:
    with pytest.raises(InvalidParameter) as caught:
        registry.get_or_create_registered_model("team/iris")
    message = str(caught.value)
    assert "'/'" in message and "\n" not in message


def test_aliases(registry: Registry, unique: Names) -> None:
    exp = registry.get_or_create_experiment(unique("exp"))
    run = finished_run(registry, exp.experiment_id)
    name = model_name(registry, unique("model"))
    registry.get_or_create_registered_model(name)
    for path in ("a", "b", "c"):
        registry.create_model_version(name, f"runs:/{run.run_id}/{path}", run.run_id, tags={"path": path})
    assert registry.get_version_by_alias(name, "champion") is None
    registry.set_alias(name, "champion", "1")
    registry.set_alias(name, "challenger", "3")
    registry.set_alias(name, "champion", "2")  # moves it
    champion = registry.get_version_by_alias(name, "champion")
    assert champion is not None and champion.version == "2" and champion.aliases == ("champion",)
    assert champion.tags == {"path": "b"}
    assert dict(registry.get_registered_model(name).aliases) == {"champion": "2", "challenger": "3"}
    assert {v.version: v.aliases for v in registry.search_model_versions(name)} == {
        "3": ("challenger",), "2": ("champion",), "1": ()}
    assert registry.get_model_version(name, "3").aliases == ("challenger",)
    registry.delete_alias(name, "champion")
    registry.delete_alias(name, "champion")  # not set any more: not an error
    assert registry.get_version_by_alias(name, "champion") is None
    assert dict(registry.get_registered_model(name).aliases) == {"challenger": "3"}
    with pytest.raises(NotFound):
        registry.set_alias(name, "champion", "42")
    with pytest.raises(InvalidParameter):
        registry.set_alias(name, "not valid", "1")
    with pytest.raises(InvalidParameter):
        registry.set_alias(name, "latest", "1")


def test_events_since(registry: Registry, unique: Names) -> None:
    exp = registry.get_or_create_experiment(unique("exp"))
    name = model_name(registry, unique("model"))
    old_run = finished_run(registry, exp.experiment_id)
    registry.get_or_create_registered_model(name)
    registry.create_model_version(name, f"runs:/{old_run.run_id}/m", old_run.run_id)
    registry.set_alias(name, "champion", "1")
    events, cursor = registry.events_since(None, [name])
    assert [e for e in events if e.model == name or e.run_id == old_run.run_id] == []  # None = from now

    run = registry.create_run(exp.experiment_id)
    registry.update_run(run.run_id, "FAILED")
    registry.create_model_version(name, f"runs:/{run.run_id}/m", run.run_id)
    registry.set_alias(name, "champion", "2")
    registry.set_alias(name, "staging", "1")
    events, cursor = registry.events_since(cursor, [name])
    mine = [(e.type, e.version, e.alias, e.run_id) for e in events if e.model == name or e.run_id == run.run_id]
    assert sorted(mine) == sorted([
        ("run.finished", "", "", run.run_id), ("model_version.created", "2", "", run.run_id),
        ("alias.set", "2", "champion", ""), ("alias.set", "1", "staging", "")])
    finished = next(e for e in events if e.type == "run.finished" and e.run_id == run.run_id)
    assert finished.data["status"] == "FAILED"

    registry.delete_alias(name, "staging")
    events, cursor = registry.events_since(cursor, [name])
    assert [(e.type, e.alias, e.version) for e in events if e.model == name] == [("alias.deleted", "staging", "1")]
    events, _ = registry.events_since(cursor, [name])
    assert [e for e in events if e.model == name or e.run_id == run.run_id] == []
    json.loads(cursor)  # opaque, but JSON
    with pytest.raises(UsageError):
        registry.events_since("not a cursor", [name])


def test_a_pipeline_run_is_finished_when_the_bot_finishes_it(registry: Registry, unique: Names) -> None:
    """Training code may end the pipeline run early (autolog) and makes child runs: neither is reported as
    finished; the pipeline run is, once the bot records its key and ends it."""
    exp = registry.get_or_create_experiment(unique("exp"))
    _, cursor = registry.events_since(None, [])
    run = registry.create_run(exp.experiment_id, tags={names.CONFIG_DIGEST: "abc"})
    child = registry.create_run(exp.experiment_id, tags={names.PARENT_RUN: run.run_id})
    registry.update_run(run.run_id, "FINISHED")  # as mlflow.sklearn.autolog() does inside a step
    registry.update_run(child.run_id, "FINISHED")
    events, cursor = registry.events_since(cursor, [])
    assert [e for e in events if e.run_id in (run.run_id, child.run_id)] == []

    registry.update_run(run.run_id, "RUNNING")
    registry.log_batch(run.run_id, tags={names.PIPELINE_KEY: "k"})
    registry.update_run(run.run_id, "FINISHED")
    events, cursor = registry.events_since(cursor, [])
    assert [(e.type, e.run_id) for e in events if e.run_id in (run.run_id, child.run_id)] == [
        ("run.finished", run.run_id)]


def test_events_for_a_model_created_after_the_cursor(registry: Registry, unique: Names) -> None:
    exp = registry.get_or_create_experiment(unique("exp"))
    name = model_name(registry, unique("model"))
    _, cursor = registry.events_since(None, [name])
    run = finished_run(registry, exp.experiment_id)
    registry.get_or_create_registered_model(name)
    registry.create_model_version(name, f"runs:/{run.run_id}/m", run.run_id)
    events, _ = registry.events_since(cursor, [name])
    assert [(e.type, e.version) for e in events if e.model == name] == [("model_version.created", "1")]
