"""A KServe rollout through the gitops target: each step is a commit of canaryTrafficPercent in a real git
repository, driven by deploy_all and continued by `mlops-bot rollout`'s flow from the version's state; an abort
(a real Prometheus answering a failing query) commits 0, KServe's rollback, and moves the champion back."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_bot.config.model import Analysis, DeployTarget, Rollout, RolloutStep
from mlops_bot.deploy import DeployOptions, deploy_all
from mlops_bot.deploy.rollout.state import read_state
from mlops_bot.deploy.serving import free_port
from mlops_bot.errors import RemoteError
from mlops_bot.events.audit import EventLog, events_dir
from mlops_bot.flows.project import Project
from mlops_bot.flows.rollback import rollback_stage
from mlops_bot.flows.rollout import Ticker, alias_back, continue_rollouts, in_progress
from mlops_bot.flows.status import version_row
from mlops_bot.lifecycle.history import Mover
from mlops_bot.registry import alias_holder, tags
from mlops_bot.registry.local.store import LocalRegistry
from tests.helpers.deploy import MODEL, make_config
from tests.helpers.git import git
from tests.helpers.gitops import Remote


def quiet(_: str) -> None:
    pass


def target(remote: Remote, **rollout: Any) -> DeployTarget:
    plan = Rollout(**{"steps": (RolloutStep(10, 0.3), RolloutStep(50, 0.3), RolloutStep(100)), "interval_s": 0.1,
                      **rollout})
    return DeployTarget("prod", "gitops", file="deploy/inference.yaml", repo=str(remote.bare),
                        set={"spec.predictor.model.storageUri": "{model_uri}"}, rollout=plan)


def serving_v2(tmp_path: Path, store: LocalRegistry, remote: Remote) -> None:
    """v2 rolled out before (KServe's previous revision); a target's first rollout has nothing to split with."""
    first = deploy_all(make_config(tmp_path, target(remote, steps=(RolloutStep(100),))), store, "2",
                       DeployOptions(echo=quiet))
    assert [r.status for r in first] == ["succeeded"]
    assert history(remote) == [("models:/iris-classifier/2", 100)]


def history(remote: Remote) -> list[tuple[str, Any]]:
    """(storageUri, canaryTrafficPercent) of each commit on main, oldest first."""
    shas = git(remote.bare, "rev-list", "--reverse", "main").split()
    found = []
    for sha in shas[1:]:
        spec = yaml.safe_load(remote.show(sha))["spec"]["predictor"]
        found.append((spec["model"]["storageUri"], spec.get("canaryTrafficPercent")))
    return found


def test_each_step_is_one_commit_and_the_rollout_finishes_at_100(tmp_path: Path, store: LocalRegistry,
                                                                   remote: Remote) -> None:
    serving_v2(tmp_path, store, remote)
    config = make_config(tmp_path, target(remote))
    results = deploy_all(config, store, "3", DeployOptions(echo=quiet))
    assert [r.status for r in results] == ["succeeded"]
    assert history(remote)[1:] == [("models:/iris-classifier/3", 10), ("models:/iris-classifier/3", 50),
                               ("models:/iris-classifier/3", 100)]  # finishing at 100 again: no fourth commit
    version = store.get_model_version(MODEL, "3")
    assert version.tags[tags.deploy_status("prod")] == "succeeded"
    assert read_state(version, "prod").phase == "completed"  # type: ignore[union-attr]
    again = deploy_all(config, store, "3", DeployOptions(echo=quiet))
    assert [r.status for r in again] == ["skipped"] and len(history(remote)) == 4


def test_a_handed_off_rollout_is_continued_from_the_registry_without_repeating_a_step(
        tmp_path: Path, store: LocalRegistry, remote: Remote) -> None:
    serving_v2(tmp_path, store, remote)
    config = make_config(tmp_path, target(remote, hand_off=True, steps=(RolloutStep(10, 1.0), RolloutStep(100))))
    first = deploy_all(config, store, "3", DeployOptions(echo=quiet))
    assert [r.status for r in first] == ["rolling_out"] and "`mlops-bot rollout` continues it" in first[0].detail
    assert in_progress(config, store) == [("3", "prod")]
    assert store.get_model_version(MODEL, "3").tags[tags.deploy_status("prod")] == "running"
    early = continue_rollouts(config, store, {})  # the hold is not over: nothing committed
    assert [r.status for r in early] == ["rolling_out"] and history(remote)[1:] == [("models:/iris-classifier/3", 10)]
    time.sleep(1.1)
    done = continue_rollouts(config, store, {})
    assert [r.status for r in done] == ["succeeded"]
    assert history(remote)[1:] == [("models:/iris-classifier/3", 10), ("models:/iris-classifier/3", 100)]
    assert in_progress(config, store) == []


@pytest.mark.slow
def test_a_failing_query_commits_0_and_moves_the_champion_back(tmp_path: Path, store: LocalRegistry,
                                                                remote: Remote, prometheus: Any) -> None:
    config = make_config(tmp_path, target(remote, metrics=prometheus.url, analysis=(
        Analysis("constant", "vector(0.3)", max=0.1),)))
    serving_v2(tmp_path, store, remote)
    store.set_alias(MODEL, "champion", "3")
    store.set_alias(MODEL, "previous-champion", "2")
    hook = alias_back(config, store, {})
    results = deploy_all(config, store, "3", DeployOptions(echo=quiet, on_abort=hook))
    assert [r.status for r in results] == ["failed"]
    assert "constant = 0.3 (bound <= 0.1): fail" in results[0].detail
    assert history(remote)[-2:] == [("models:/iris-classifier/3", 10), ("models:/iris-classifier/3", 0)]
    assert alias_holder(store, MODEL, "champion").version == "2"  # type: ignore[union-attr]
    version = store.get_model_version(MODEL, "3")
    assert "rollout of v3 to prod" in version.tags[tags.ROLLED_BACK]
    assert read_state(version, "prod").phase == "aborted"  # type: ignore[union-attr]


def test_serve_s_ticker_continues_a_handed_off_rollout(tmp_path: Path, store: LocalRegistry, remote: Remote) -> None:
    root = tmp_path / "project"  # where the `store` fixture keeps the embedded registry: the ticker opens its own
    serving_v2(root, store, remote)
    config = make_config(root, target(remote, hand_off=True, steps=(RolloutStep(10, 0.5), RolloutStep(100))))
    assert [r.status for r in deploy_all(config, store, "3", DeployOptions(echo=quiet))] == ["rolling_out"]
    ticker = Ticker(config, {}, 0.2).start()
    try:
        deadline = time.monotonic() + 20
        while in_progress(config, store) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        ticker.stop()
    assert in_progress(config, store) == []
    assert history(remote)[1:] == [("models:/iris-classifier/3", 10), ("models:/iris-classifier/3", 100)]
    assert Ticker.of(config, {}) is not None and Ticker.of(make_config(root), {}) is None


def test_two_drivers_at_once_take_each_step_once(tmp_path: Path, store: LocalRegistry, remote: Remote) -> None:
    root = tmp_path / "project"
    serving_v2(root, store, remote)
    config = make_config(root, target(remote, hand_off=True))
    assert [r.status for r in deploy_all(config, store, "3", DeployOptions(echo=quiet))] == ["rolling_out"]
    outcomes: list[str] = []

    def drive() -> None:  # a `mlops-bot rollout --wait` of its own, e.g. watch on one machine, cron on another
        registry = LocalRegistry(root / ".mlops-bot")
        try:
            outcomes.extend(r.status for r in continue_rollouts(config, registry, {}, wait=True))
        finally:
            registry.close()

    threads = [threading.Thread(target=drive) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert "failed" not in outcomes and "succeeded" in outcomes
    assert history(remote)[1:] == [("models:/iris-classifier/3", 10), ("models:/iris-classifier/3", 50),
                                   ("models:/iris-classifier/3", 100)]
    started = [e for e in EventLog(events_dir(root)).read() if e.type == "rollout.step_started"
               and e.data["version"] == "3"]
    assert [e.data["traffic"] for e in started] == [10, 50, 100]  # no step applied twice


def test_a_rollback_by_hand_rolls_back_the_rollout_in_progress(tmp_path: Path, store: LocalRegistry,
                                                                remote: Remote) -> None:
    root = tmp_path / "project"
    serving_v2(root, store, remote)
    store.set_alias(MODEL, "champion", "3")
    store.set_alias(MODEL, "previous-champion", "2")
    config = make_config(root, target(remote, hand_off=True, steps=(RolloutStep(10, 60), RolloutStep(100))))
    assert [r.status for r in deploy_all(config, store, "3", DeployOptions(echo=quiet))] == ["rolling_out"]
    with Project.of(config, {}) as project:
        restored, replaced = rollback_stage(project, "champion", Mover("ops", ""), "latency complaints")
    assert (restored.version, replaced) == ("2", "3")
    # KServe's rollback (all traffic to the previous revision), then the restored version redeployed as the manifest
    assert history(remote)[-2:] == [("models:/iris-classifier/3", 0), ("models:/iris-classifier/2", 100)]
    assert in_progress(config, store) == []
    state = read_state(store.get_model_version(MODEL, "3"), "prod")
    assert state is not None and state.phase == "aborted" and "rolled back by hand: latency complaints" in state.reason
    assert continue_rollouts(config, store, {}) == []  # nothing left for a later tick to finish


@pytest.mark.slow
def test_an_unreachable_prometheus_is_reported_and_the_rollout_holds(tmp_path: Path, store: LocalRegistry,
                                                                      remote: Remote) -> None:
    root = tmp_path / "project"
    serving_v2(root, store, remote)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = make_config(root, target(remote, hand_off=True, metrics=closed, steps=(RolloutStep(10, 0.2),
                                                                                    RolloutStep(100)),
                                      analysis=(Analysis("errors", "vector(0)", max=0.1),)))
    with pytest.raises(RemoteError, match=r"Prometheus: no answer from http://127\.0\.0\.1:\d+/api/v1/query"):
        deploy_all(config, store, "3", DeployOptions(echo=quiet))
    [result] = continue_rollouts(config, store, {})  # e.g. `mlops-bot rollout` from cron: reported, not fatal
    assert result.status == "failed" and "could not advance" in result.detail and "Prometheus" in result.detail
    assert in_progress(config, store) == [("3", "prod")]  # it holds where it was
    assert history(remote)[1:] == [("models:/iris-classifier/3", 10)]


def test_status_shows_where_a_rollout_stands(tmp_path: Path, store: LocalRegistry, remote: Remote) -> None:
    root = tmp_path / "project"
    serving_v2(root, store, remote)
    config = make_config(root, target(remote, hand_off=True, steps=(RolloutStep(10, 60), RolloutStep(100))))
    deploy_all(config, store, "3", DeployOptions(echo=quiet))
    assert version_row(config, store.get_model_version(MODEL, "3"))["deployments"] == {"prod": "rolling out (10%)"}
    assert version_row(config, store.get_model_version(MODEL, "2"))["deployments"] == {"prod": "succeeded"}
    store.set_alias(MODEL, "previous-champion", "2")
    with Project.of(config, {}) as project:
        rollback_stage(project, "champion", Mover("ops", ""), "no")
    assert version_row(config, store.get_model_version(MODEL, "3"))["deployments"] == {"prod": "rolled back"}
