"""The promotion lock on a registry that cannot delete a registered model (Azure ML keeps them for good; the
stand-in answers registered-models/delete with 404 as Azure does): released and taken over by generations, so
the second promotion does not wait for a lock nobody holds. The same sequence on the real `mlflow server`
(which deletes) shows the behaviour is the same where delete exists."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from mlops_bot.registry.base import Registry
from mlops_bot.registry.lock import registry_lock
from mlops_bot.registry.mlflow.lock import PREFIX


@pytest.mark.parametrize("kind", [pytest.param("azureml", marks=pytest.mark.slow),
                                  pytest.param("mlflow", marks=pytest.mark.mlflow)])
def test_a_released_lock_is_taken_again_and_an_expired_one_taken_over(
        registry_factory: Callable[..., Registry], kind: str) -> None:
    registry = registry_factory(kind)
    name = f"lock-{uuid.uuid4().hex[:8]}"
    assert registry.try_lock(name, "a", 60_000) == "a"
    assert registry.try_lock(name, "b", 60_000) == "a"  # held
    registry.unlock(name, "a")
    assert registry.try_lock(name, "b", 60_000) == "b"  # released: taken at once
    assert registry.try_lock(name, "a", 60_000) == "b"
    registry.unlock(name, "a")  # not the holder: changes nothing
    assert registry.try_lock(name, "c", 60_000) == "b"
    registry.unlock(name, "b")
    assert registry.try_lock(name, "a", 1) == "a"  # held for a millisecond, then abandoned
    time.sleep(0.05)
    assert registry.try_lock(name, "c", 60_000) == "c"  # expired: taken over
    registry.unlock(name, "c")
    for promotion in range(3):  # promotions one after another, as merges come
        with registry_lock(registry, name, wait_s=5) as owner:
            assert registry.try_lock(f"promote.{name}", f"other-{promotion}", 60_000) == owner


@pytest.mark.slow
def test_without_delete_the_lock_leaves_generations_not_a_stuck_model(registry_factory: Callable[..., Registry]
                                                                    ) -> None:
    registry = registry_factory("azureml")
    name = f"lock-{uuid.uuid4().hex[:8]}"
    for owner in ("a", "b", "c"):
        assert registry.try_lock(name, owner, 60_000) == owner
        registry.unlock(name, owner)
    models = {PREFIX + name, f"{PREFIX}{name}.1", f"{PREFIX}{name}.2"}
    for model in models:
        registry.get_registered_model(model)  # each generation exists, with its released marker
        registry.get_registered_model(model + ".released")
