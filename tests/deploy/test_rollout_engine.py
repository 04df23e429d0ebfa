"""The rollout loop on the embedded registry with a clock the test moves: steps, holds, analysis, abort, resume,
shadow. The platform is a recording driver (the real ones, nginx and KServe's manifest, are tested in
test_rollout_serve.py and test_rollout_gitops.py); the state the loop keeps is the real tag on a real version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.config.model import Analysis, DeployTarget, Rollout, RolloutStep, Shadow
from mlops_bot.deploy.rollout.engine import SHADOW_QUERY, Engine, Hooks
from mlops_bot.deploy.rollout.state import read_state, tag
from mlops_bot.registry.base import ModelVersion, Registry

MODEL = "rolled"
ERRORS = Analysis("error-rate", 'sum(rate(errors{version="$version"}[1m]))', max=0.05)


class Driver:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def stable(self) -> str | None:
        return "1"

    def prepare(self) -> dict[str, str]:
        return {}

    def split(self, percent: int) -> str:
        self.calls.append(f"split {percent}")
        return f"{percent}%"

    def shadow(self, share: int) -> str:
        self.calls.append(f"shadow {share}")
        return f"shadow {share}%"

    def restore(self) -> str:
        self.calls.append("restore")
        return "all back to v1"

    def finish(self) -> str:
        self.calls.append("finish")
        return "all to v2"


class World:
    """The clock, the metrics and what the hooks saw."""

    def __init__(self) -> None:
        self.ms = 1_000_000
        self.values: dict[str, float | None] = {}
        self.queries: list[str] = []
        self.events: list[tuple[str, dict[str, object]]] = []
        self.aborts: list[tuple[str, str]] = []

    def measure(self, query: str) -> float | None:
        self.queries.append(query)
        return next((v for k, v in self.values.items() if k in query), None)

    def hooks(self) -> Hooks:
        def on_abort(stable: str, reason: str) -> str:
            self.aborts.append((stable, reason))
            return f"champion back to v{stable}"

        return Hooks(emit=lambda kind, data: self.events.append((kind, dict(data))), on_abort=on_abort,
                     measure=self.measure, now=lambda: self.ms, sleep=self.sleep)

    def sleep(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


def _target(**rollout: object) -> DeployTarget:
    plan = Rollout(**{"steps": (RolloutStep(10, 60), RolloutStep(50, 60), RolloutStep(100)), "analysis": (ERRORS,),
                      "metrics": "http://127.0.0.1:9", "interval_s": 10, **rollout})  # type: ignore[arg-type]
    return DeployTarget("serve", "mlflow_serve", port=8080, rollout=plan)


@pytest.fixture
def registry(registry_factory: Callable[..., Registry], tmp_path: Path) -> Registry:
    made = registry_factory("local")
    made.get_or_create_registered_model(MODEL)
    experiment = made.get_or_create_experiment("e").experiment_id
    for _ in range(2):
        run = made.create_run(experiment, "r", {})
        made.create_model_version(MODEL, f"runs:/{run.run_id}/model", run.run_id)
    return made


def _engine(registry: Registry, world: World, driver: Driver, target: DeployTarget | None = None) -> Engine:
    version = registry.get_model_version(MODEL, "2")
    engine = Engine(target or _target(), version, registry, driver, world.hooks())
    engine.state = read_state(version, engine.target.name)
    return engine


def _version(registry: Registry) -> ModelVersion:
    return registry.get_model_version(MODEL, "2")


def test_a_passing_rollout_takes_each_step_after_its_hold_and_finishes(registry: Registry) -> None:
    world, driver = World(), Driver()
    world.values = {"errors": 0.01}
    engine = _engine(registry, world, driver)
    engine.begin("1")
    first = engine.tick()
    assert driver.calls == ["split 10"] and first.due_ms == world.ms + 10_000  # the next analysis, mid-hold
    world.ms += 59_000
    assert engine.tick().state.step == 0 and driver.calls == ["split 10"]  # still holding: nothing moves
    world.ms += 1_000
    engine.tick()
    assert driver.calls == ["split 10", "split 50"]
    done = engine.drive(wait=True)
    assert done.state.phase == "completed" and done.due_ms is None
    assert driver.calls == ["split 10", "split 50", "split 100", "finish"]
    assert world.kinds() == ["rollout.started", "rollout.step_started", "rollout.step_passed", "rollout.step_started",
                             'rollout.step_passed', "rollout.step_started", "rollout.step_passed", "rollout.completed"]
    assert all('version="2"' in q for q in world.queries)  # $version filled in
    assert read_state(_version(registry), "serve").phase == "completed"  # type: ignore[union-attr]


def test_a_failing_query_aborts_at_once_traffic_and_alias_back(registry: Registry) -> None:
    world, driver = World(), Driver()
    world.values = {"errors": 0.2}
    engine = _engine(registry, world, driver)
    engine.begin("1")
    progress = engine.tick()
    assert progress.state.phase == "aborted" and progress.due_ms is None
    assert driver.calls == ["split 10", "restore"]
    assert world.aborts and world.aborts[0][0] == "1" and "error-rate = 0.2 (bound <= 0.05): fail" in world.aborts[0][1]
    kind, data = world.events[-1]
    assert kind == "deployment.rolled_back" and data["rollout_step"] == 1 and data["traffic"] == 10
    assert data["alias_moves"] == "champion back to v1"
    assert data["analysis"] == [{"name": "error-rate", "value": 0.2, "outcome": "fail", "bound": "<= 0.05"}]
    again = _engine(registry, world, driver).tick()  # a later process finds it ended: nothing moves
    assert again.state.phase == "aborted" and driver.calls == ["split 10", "restore"]


def test_a_resumed_rollout_neither_repeats_a_step_nor_shortens_its_hold(registry: Registry) -> None:
    world, driver = World(), Driver()
    world.values = {"errors": 0.0}
    engine = _engine(registry, world, driver)
    engine.begin("1")
    engine.tick()
    world.ms += 30_000  # the process is killed mid-hold; another one resumes from the version's tag
    resumed, other = _engine(registry, world, Driver()), None
    progress = resumed.tick()
    assert resumed.driver.calls == [] and progress.state.step == 0  # type: ignore[attr-defined]
    assert progress.due_ms == world.ms + 10_000
    world.ms += 30_000
    other = _engine(registry, world, Driver())
    other.tick()
    assert other.driver.calls == ["split 50"]  # type: ignore[attr-defined]


def test_a_decision_made_but_not_applied_is_applied_on_resume_and_its_hold_starts_then(registry: Registry) -> None:
    world, driver = World(), Driver()
    world.values = {"errors": 0.0}
    engine = _engine(registry, world, driver)
    engine.begin("1")  # killed before the first split: since_ms is 0 on record
    world.ms += 600_000
    resumed = _engine(registry, world, Driver())
    progress = resumed.tick()
    assert resumed.driver.calls == ["split 10"]  # type: ignore[attr-defined]
    assert progress.state.since_ms == world.ms  # the hold counts from the change, not from the decision


def test_no_data_holds_one_more_hold_then_aborts(registry: Registry) -> None:
    world, driver = World(), Driver()
    engine = _engine(registry, world, driver)
    engine.begin("1")
    engine.tick()
    world.ms += 60_000
    waiting = engine.tick()
    assert "waiting for data (error-rate)" in waiting.detail and driver.calls == ["split 10"]
    world.ms += 60_000
    ended = engine.tick()
    assert ended.state.phase == "aborted" and "no data for error-rate within 2m" in ended.state.reason
    assert driver.calls == ["split 10", "restore"]


def test_shadow_comes_first_and_its_agreement_is_reported(registry: Registry) -> None:
    world, driver = World(), Driver()
    world.values = {"errors": 0.0, "mlops_bot_shadow_rows_total": 0.97}
    target = _target(shadow=Shadow(20, 120, min_agreement=0.9))
    engine = _engine(registry, world, driver, target)
    engine.begin("1")
    engine.tick()
    assert driver.calls == ["shadow 20"]
    world.ms += 120_000
    engine.tick()
    assert driver.calls == ["shadow 20", "shadow 0", "split 10"]
    reported = [data for kind, data in world.events if kind == "rollout.shadow_reported"]
    assert reported == [{"phase": "shadow", "rollout_step": 0, "rollout_steps": 3, "traffic": 0,
                         "previous_version": "1", "agreement": 0.97, "share": 20}]
    assert any(q == SHADOW_QUERY.replace("$target", "serve").replace("$version", "2") for q in world.queries)


def test_shadow_below_its_agreement_aborts_before_any_user_sees_the_version(registry: Registry) -> None:
    world, driver = World(), Driver()
    world.values = {"errors": 0.0, "mlops_bot_shadow_rows_total": 0.5}
    engine = _engine(registry, world, driver, _target(shadow=Shadow(20, 120, min_agreement=0.9)))
    engine.begin("1")
    ended = engine.tick()
    assert ended.state.phase == "aborted" and "shadow-agreement = 0.5 (bound >= 0.9)" in ended.state.reason
    assert driver.calls == ["shadow 20", "restore"] and not any(c.startswith("split") for c in driver.calls)


def test_without_a_serving_version_the_new_one_takes_all_traffic(registry: Registry) -> None:
    world, driver = World(), Driver()
    engine = _engine(registry, world, driver)
    engine.begin(None)
    done = engine.tick()
    assert done.state.phase == "completed" and driver.calls == ["split 100", "finish"]
    assert world.aborts == []


def test_the_state_on_the_version_is_compact_json(registry: Registry) -> None:
    world, driver = World(), Driver()
    world.values = {"errors": 0.0}
    engine = _engine(registry, world, driver)
    engine.begin("1")
    engine.tick()
    raw = _version(registry).tags[tag("serve")]
    assert tag("serve") == "mlops_bot.deploy.serve.rollout" and len(raw) < 1000 and '"phase":"step"' in raw


def test_every_rollout_event_matches_the_event_schema(registry: Registry) -> None:
    import json

    import jsonschema

    from mlops_bot.events.event import Event, model_subject

    schema = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "event.schema.json").read_text())
    world = World()
    world.values = {"errors": 0.0, "mlops_bot_shadow_rows_total": 1.0}
    engine = _engine(registry, world, Driver(), _target(shadow=Shadow(20, 1)))
    engine.begin("1")
    engine.drive(wait=True)
    bad = World()
    bad.values = {"errors": 0.5}
    failing = _engine(registry, bad, Driver())
    failing.state = None
    failing.begin("1")
    failing.tick()
    kinds = set()
    for kind, data in world.events + bad.events:
        kinds.add(kind)
        event = Event(kind, model_subject(MODEL, "2"), {"model": MODEL, "version": "2", "target": "serve", **data})
        jsonschema.validate(json.loads(event.to_json()), schema)
    assert kinds == {"rollout.started", "rollout.step_started", "rollout.step_passed", "rollout.shadow_reported",
                     "rollout.completed", "deployment.rolled_back"}
