"""`pipeline.<step>.backend`: as loaded (memory in bytes, the shorthand), and the checks a schema cannot express,
each a located problem (config/backends.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.config import load_config
from mlops_bot.config.backends import StepBackend, memory_bytes
from tests.config.test_serving_config import problems_of
from tests.helpers.ml_yaml import VALID

SERVER = "tracking: {uri: 'http://127.0.0.1:5000'}\n"


def with_train_backend(backend: str, tracking: str = SERVER) -> str:
    return tracking + VALID.replace("    outs: [build/model]\n", f"    outs: [build/model]\n    backend: {backend}\n")


def test_a_step_runs_locally_unless_it_says_otherwise(project: Callable[[str], Path]) -> None:
    config = load_config(project(with_train_backend("local")), env={})
    assert all(step.backend is None for step in config.pipeline.values())


def test_a_ray_backend_loads_with_its_resources(project: Callable[[str], Path]) -> None:
    config = load_config(project(with_train_backend(
        "{type: ray, address: 'http://127.0.0.1:8265', num_cpus: 2, num_gpus: 0.5, memory: 4GiB, pip: [lightgbm]}")),
        env={})
    assert config.pipeline["train"].backend == StepBackend(
        type="ray", address="http://127.0.0.1:8265", num_cpus=2, num_gpus=0.5, memory=4 * 1024 ** 3,
        pip=("lightgbm",))
    assert config.pipeline["prepare"].backend is None
    shorthand = load_config(project(with_train_backend("ray")), env={}).pipeline["train"].backend
    assert shorthand == StepBackend(type="ray") and shorthand.remote


def test_the_backend_is_not_part_of_the_cache_key(project: Callable[[str], Path]) -> None:
    from mlops_bot.pipeline.cache import step_inputs
    from mlops_bot.pipeline.hashing import Hasher

    keys = []
    for backend in ("local", "{type: kubernetes, image: 'python:3.11', num_cpus: 1}"):
        config = load_config(project(with_train_backend(backend)), env={})
        hasher = Hasher(config.root, config.root / ".mlops-bot")
        (config.root / "build").mkdir(exist_ok=True)
        (config.root / "build" / "data.csv").write_text("a\n1\n")
        keys.append(step_inputs(config.pipeline["train"], hasher, {}).key)
    assert keys[0] == keys[1]


@pytest.mark.parametrize(("text", "expected"), [
    ("4GiB", 4 * 1024 ** 3), ("512Mi", 512 * 1024 ** 2), ("2G", 2 * 10 ** 9), ("1.5GB", 1_500_000_000),
    ("100", 100), (2048, 2048)])
def test_memory_takes_the_units_people_write(text: str | int, expected: int) -> None:
    assert memory_bytes(text) == expected


def test_what_a_backend_cannot_be(project: Callable[[str], Path]) -> None:
    text = "\n".join(problems_of(project(with_train_backend(
        "{type: kubernetes, pip: [x], memory: lots, num_cpus: 1, num_gpus: 0.5}"))))
    assert "pipeline.train.backend.pip: 'pip' is a setting of ray steps, not of kubernetes ones; remove it" in text
    assert "pipeline.train.backend: a kubernetes step runs in a container: add image:" in text
    assert "pipeline.train.backend.num_gpus: Kubernetes schedules whole GPUs (nvidia.com/gpu); 0.5 is a fraction" \
        in text
    assert "pipeline.train.backend.memory: 'lots' is not an amount of memory (e.g. 4GiB, 512Mi, 2000000000)" in text
    text = "\n".join(problems_of(project(with_train_backend("{type: ray, image: 'python:3.11'}"))))
    assert "pipeline.train.backend.image: 'image' is a setting of kubernetes steps, not of ray ones" in text
    assert "ml.yaml:" in text  # located in the file, with its line


def test_a_remote_step_needs_a_tracking_server(project: Callable[[str], Path]) -> None:
    text = "\n".join(problems_of(project(with_train_backend("ray", tracking=""))))
    assert "pipeline.train.backend: a step on ray logs to the tracking run and returns its outs through the " \
           "run's artifacts, which the embedded store cannot serve to a cluster; set tracking.uri" in text


def test_an_unknown_backend_is_refused_by_the_schema(project: Callable[[str], Path]) -> None:
    text = "\n".join(problems_of(project(with_train_backend("{type: slurm}"))))
    assert "pipeline.train.backend" in text
