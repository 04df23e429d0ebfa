"""Two processes using one embedded store at once: no lost update, no duplicate version number."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

from mlops_bot.registry.local.store import LocalRegistry

PER_PROCESS = 200
MODEL = "shared-model"


def worker(root: str, run_id: str, worker_id: int, barrier: Barrier) -> None:
    registry = LocalRegistry(Path(root))
    barrier.wait(timeout=60)
    for index in range(PER_PROCESS):
        version = registry.create_model_version(MODEL, f"runs:/{run_id}/w{worker_id}-{index}", run_id).version
        # Both processes also register the very same source: one version must come out of it.
        registry.create_model_version(MODEL, f"runs:/{run_id}/both-{index}", run_id)
        registry.set_alias(MODEL, "champion", version)
        registry.set_model_version_tag(MODEL, version, "writer", str(worker_id))
        registry.log_batch(run_id, params={"shared": "same"}, metrics={f"w{worker_id}": float(index)}, step=index)
    registry.close()


def test_two_processes_share_the_store(tmp_path: Path) -> None:
    root = tmp_path / ".mlops-bot"
    registry = LocalRegistry(root)
    exp = registry.get_or_create_experiment("concurrent")
    run_id = registry.create_run(exp.experiment_id).run_id
    registry.get_or_create_registered_model(MODEL)

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [context.Process(target=worker, args=(str(root), run_id, n, barrier)) for n in (1, 2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0]

    versions = registry.search_model_versions(MODEL)
    numbers = sorted(int(v.version) for v in versions)
    assert numbers == list(range(1, 3 * PER_PROCESS + 1))  # contiguous, none lost, none doubled
    sources = [v.source for v in versions]
    assert len(set(sources)) == len(sources) == 3 * PER_PROCESS
    champion = registry.get_version_by_alias(MODEL, "champion")
    assert champion is not None and champion.tags.get("writer") in ("1", "2")
    assert sum(1 for v in versions if v.aliases) == 1
    for worker_id in (1, 2):
        history = registry.metric_history(run_id, f"w{worker_id}")
        assert [p.value for p in history] == [float(i) for i in range(PER_PROCESS)]
    assert registry.get_run(run_id).params == {"shared": "same"}
