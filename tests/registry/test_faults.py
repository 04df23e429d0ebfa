"""Fault injection against the real MLflow server: 30% of requests fail (503, 429 with Retry-After: 0,
timeouts), some of them AFTER the server did the work (the answer is lost). A scripted sequence of 200
operations must end in the same state as the same script without faults, with nothing duplicated."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_bot.registry.base import Registry
from mlops_bot.registry.mlflow.http import RetryPolicy

pytestmark = pytest.mark.mlflow

RUNS = 12
KINDS = ("503", "429", "timeout", "503-after", "timeout-after", "disconnect-after")
# The first request to each of these loses its answer after the server acted: the case idempotency is for.
ALWAYS_LOSE_FIRST = ("runs/create", "model-versions/create", "runs/log-batch", "experiments/create",
                     "registered-models/create")


class FaultyTransport(httpx.BaseTransport):
    def __init__(self, seed: int, rate: float = 0.3) -> None:
        self.inner = httpx.HTTPTransport()
        self.random = random.Random(seed)
        self.rate = rate
        self.faults: Counter[str] = Counter()
        self.lost: Counter[str] = Counter()  # endpoint -> answers lost after the server acted
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        endpoint = request.url.path.split("/api/2.0/mlflow/")[-1]
        forced = endpoint in ALWAYS_LOSE_FIRST and self.lost[endpoint] == 0
        if not forced and self.random.random() >= self.rate:
            return self.inner.handle_request(request)
        kind = "503-after" if forced else self.random.choice(KINDS)
        self.faults[kind] += 1
        if kind.endswith("-after"):
            answer = self.inner.handle_request(request)
            answer.read()
            answer.close()
            self.lost[endpoint] += 1
        if kind.startswith("503"):
            return httpx.Response(503, headers={"content-type": "text/html"},
                                  text="<html><title>503 Service Unavailable</title></html>")
        if kind == "429":
            return httpx.Response(429, headers={"Retry-After": "0"},
                                  json={"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"})
        if kind == "disconnect-after":
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        raise httpx.ReadTimeout("injected timeout", request=request)

    def close(self) -> None:
        self.inner.close()


def script(registry: Registry, suffix: str, workdir: Path) -> int:
    """The same 200 operations whatever the registry; returns how many it made."""
    ops = 0

    def op(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        nonlocal ops
        ops += 1
        return call(*args, **kwargs)

    exp = op(registry.get_or_create_experiment, f"faults-{suffix}")
    op(registry.get_or_create_experiment, f"faults-{suffix}")
    model = f"faults-model-{suffix}"
    op(registry.get_or_create_registered_model, model)
    op(registry.get_or_create_registered_model, model)
    files = workdir / f"files-{suffix}"
    (files / "sub").mkdir(parents=True)
    (files / "weights.bin").write_bytes(bytes(range(256)) * 8)
    (files / "sub" / "meta.json").write_text('{"ok": true}')
    for index in range(RUNS):
        rid = op(registry.create_run, exp.experiment_id, name=f"run-{index}", tags={"i": str(index)}).run_id
        op(registry.log_batch, rid, params={"C": str(index), "seed": "7"})
        for step in range(3):
            op(registry.log_batch, rid, metrics={"acc": index / 10 + step, "loss": 1.0 / (step + 1)}, step=step)
        op(registry.log_batch, rid, params={"seed": "7"}, tags={"done": "yes"})  # a param logged again
        op(registry.upload_artifacts, rid, files, "model")
        op(registry.update_run, rid, "FINISHED")
        version = op(registry.create_model_version, model, f"runs:/{rid}/model", rid).version
        op(registry.create_model_version, model, f"runs:/{rid}/model", rid)
        op(registry.set_model_version_tag, model, version, "index", str(index))
        op(registry.set_alias, model, "champion", version)
        op(registry.get_version_by_alias, model, "champion")
        op(registry.get_run, rid)
        op(registry.metric_history, rid, "acc")
    op(registry.set_alias, model, "staging", "3")
    op(registry.delete_alias, model, "champion")
    op(registry.set_alias, model, "champion", str(RUNS - 1))
    while ops < 200:
        op(registry.search_runs, [exp.experiment_id], "tags.done = 'yes'")
    return ops


def snapshot(registry: Registry, suffix: str, workdir: Path) -> dict[str, Any]:
    """Everything the script made, with ids and times replaced by names (they differ between runs)."""
    exp = registry.get_or_create_experiment(f"faults-{suffix}")
    runs = registry.search_runs([exp.experiment_id])
    ids = {r.run_id: r.name for r in runs}
    state: dict[str, Any] = {"runs": {}, "versions": [], "aliases": {}}
    for run in runs:
        download = registry.download_artifacts(run.run_id, "model", workdir / f"check-{suffix}" / run.name)
        state["runs"][run.name] = {
            "status": run.status, "params": dict(run.params), "metrics": dict(run.metrics),
            "tags": {k: v for k, v in run.tags.items() if not k.startswith("mlflow.")},
            "history": {key: [(p.step, p.value) for p in registry.metric_history(run.run_id, key)]
                        for key in ("acc", "loss")},
            "files": sorted((p.relative_to(download).as_posix(), p.read_bytes()) for p in download.rglob("*")
                            if p.is_file()),
        }
    model = registry.get_registered_model(f"faults-model-{suffix}")
    state["aliases"] = dict(model.aliases)
    for version in registry.search_model_versions(model.name):
        state["versions"].append((version.version, ids[version.run_id], version.source.replace(version.run_id, "R"),
                                  dict(version.tags), version.aliases))
    return state


def test_200_operations_under_faults_end_in_the_same_state(
        registry_factory: Callable[..., Registry], unique: Callable[[str], str], tmp_path: Path) -> None:
    clean = registry_factory("mlflow")
    transport = FaultyTransport(seed=20240601)
    faulty = registry_factory("mlflow", transport=transport, retry=RetryPolicy(
        total_seconds=30.0, initial_wait=0.005, max_wait=0.05, retry_after_cap=0.1, timeout=10.0))

    assert script(clean, unique("clean"), tmp_path) == 200
    assert script(faulty, unique("faulty"), tmp_path) == 200

    expected = snapshot(clean, unique("clean"), tmp_path)
    got = snapshot(clean, unique("faulty"), tmp_path)
    assert got == expected
    assert len(got["runs"]) == RUNS and len(got["versions"]) == RUNS  # nothing duplicated
    assert all(len(points) == 3 for run in got["runs"].values() for points in run["history"].values())
    # The faults really happened, every kind, and answers were lost after creates and metric batches.
    assert set(transport.faults) == set(KINDS)
    assert sum(transport.faults.values()) >= 0.2 * transport.requests
    assert all(transport.lost[endpoint] >= 1 for endpoint in ALWAYS_LOSE_FIRST)
