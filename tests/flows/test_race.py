"""Two merges promoting at once, against the real mlflow server: exactly one champion, the better one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.config.model import Config
from mlops_bot.flows.compare import compare_registry
from mlops_bot.flows.promote import promote_flow
from mlops_bot.registry.base import Registry
from mlops_bot.registry.lock import registry_lock
from tests.helpers.projects import LOCAL
from tests.helpers.registries import make_run

ROUNDS = 8


def promote_in_thread(config: Config, registry: Registry, run_id: str, start: threading.Barrier,
                      errors: list[BaseException]) -> None:
    try:
        decision = compare_registry(config, registry, run_id)  # both judged against the same old champion
        start.wait()
        promote_flow(config, registry, decision, LOCAL, run_given=True)
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)


@pytest.mark.mlflow
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_promotions_end_with_the_better_champion(
        project: Callable[..., Config], registry_factory: Callable[..., Registry], unique: Callable[[str], str],
        tmp_path: Path, round_: int) -> None:
    model = unique("race")
    config = project(model=model, uri="http://unused", deploy="")
    setup = registry_factory("mlflow")
    first = make_run(setup, config, 0.70, tmp_path)
    promote_flow(config, setup, compare_registry(config, setup, first), LOCAL, run_given=True)
    good, best = make_run(setup, config, 0.80, tmp_path), make_run(setup, config, 0.90, tmp_path)
    runs = [good, best] if round_ % 2 else [best, good]  # vary who starts first
    start, errors = threading.Barrier(2), []
    threads = [threading.Thread(target=promote_in_thread,
                                args=(config, registry_factory("mlflow"), run_id, start, errors)) for run_id in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    champions = [v for v in setup.search_model_versions(model) if "champion" in v.aliases]
    assert len(champions) == 1
    assert champions[0].run_id == best
    assert setup.get_run(champions[0].run_id).metrics["accuracy"] == 0.90


@pytest.mark.parametrize("kind", ["local", pytest.param("mlflow", marks=pytest.mark.mlflow)])
def test_lock_excludes_a_second_owner_until_released_or_expired(
        registry_factory: Callable[..., Registry], unique: Callable[[str], str], kind: str) -> None:
    registry, name = registry_factory(kind), unique("lock")
    assert registry.try_lock(name, "a", 60_000) == "a"
    assert registry.try_lock(name, "a", 60_000) == "a"  # repeating a successful call is fine
    assert registry.try_lock(name, "b", 60_000) == "a"
    registry.unlock(name, "b")  # not the holder: nothing happens
    assert registry.try_lock(name, "b", 60_000) == "a"
    registry.unlock(name, "a")
    assert registry.try_lock(name, "b", 1) == "b"
    time.sleep(0.01)
    assert registry.try_lock(name, "c", 60_000) == "c"  # b's lock expired after 1 ms
    registry.unlock(name, "c")
    with registry_lock(registry, name.replace("lock", "model")) as owner:
        assert registry.try_lock(f"promote.{name.replace('lock', 'model')}", "d", 60_000) == owner
