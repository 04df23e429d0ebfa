"""`backend: ray` against a real Ray head on 127.0.0.1 and the real mlflow server: the step runs on the cluster
(in Ray's working directory, logging to the pipeline's run), its outs come back identical to a local run's, and
the cache, ml.lock and reuse on a fresh clone behave as for a local step."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.git import git
from tests.helpers.ray_cluster import RayCluster
from tests.helpers.ray_project import backend_yaml, cli, jobs_of, make_project
from tests.servers.mlflow_server import MlflowServer

pytestmark = [pytest.mark.slow, pytest.mark.mlflow]

OUTS = ("build/train.csv", "build/model/model.txt", "build/model/MLmodel", "build/metrics.json")


def lock(project: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((project / "ml.lock").read_text()))


def supervisor_resources(address: str, submission: str) -> dict[str, float]:
    """What Ray reserved for the job's entrypoint (its supervisor actor holds them; the Jobs API does not show
    entrypoint_num_cpus back)."""
    from ray.util.state import list_actors

    actors = list_actors(address=address, filters=[("name", "=", f"_ray_internal_job_actor_{submission}")],
                         detail=True, raise_on_missing_output=False)
    assert len(actors) == 1, actors
    return dict(actors[0].required_resources)


def test_a_ray_step_returns_the_outs_of_a_local_run_and_is_cached_and_reused(
        mlflow_server: MlflowServer, ray_cluster: RayCluster, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    token = uuid.uuid4().hex[:8]
    local = make_project(tmp_path / "local", mlflow_server.uri, f"ray-peer-{token}", backend_yaml(None))
    done = cli(local, "--json")
    assert done.returncode == 0, done.stderr

    experiment = f"ray-{token}"
    project = make_project(tmp_path / "on-ray", mlflow_server.uri, experiment,
                           backend_yaml(ray_cluster.address, num_cpus=1, memory="200MiB"))
    done = cli(project, "--json")
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)
    assert [s["status"] for s in first["steps"]] == ["ran", "ran"]
    assert "[train] trained with C 0.5" in done.stderr  # the cluster's log, echoed as it came
    assert f"submitted to the Ray cluster at {ray_cluster.address}" in done.stderr
    assert "mlops-bot-remote: outs uploaded to run" in done.stderr
    for out in OUTS:
        assert (project / out).read_bytes() == (local / out).read_bytes(), out
    assert lock(project) == lock(local)  # the same keys and out hashes, whatever the backend
    assert first["metrics"] == {"accuracy": 0.75, "rows": 20.0}

    jobs = jobs_of(ray_cluster.address, experiment)
    assert len(jobs) == 1 and str(jobs[0].status) == "SUCCEEDED"
    assert supervisor_resources(ray_cluster.address, jobs[0].submission_id) == {"CPU": 1.0, "memory": 200 * 2**20}
    assert jobs[0].metadata["mlops-bot/run-id"] == first["run_id"]
    run = MlflowClient(mlflow_server.uri).get_run(first["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["step_logged"] == 1.0  # the step's own mlflow call reached the pipeline's run
    assert run.data.tags["step.saw_run_id"] == first["run_id"]
    assert "runtime_resources" in run.data.tags["step.cwd"]  # it ran in Ray's working directory, not here

    again = cli(project, "--json")
    assert again.returncode == 0, again.stderr
    assert [s["status"] for s in json.loads(again.stdout)["steps"]] == ["cached", "cached"]

    clone = tmp_path / "fresh-runner"
    git(tmp_path, "clone", "-q", str(project), str(clone))
    shutil.copytree(project / "data", clone / "data")  # data git ignores comes from elsewhere in CI
    fresh = cli(clone, "--json")
    assert fresh.returncode == 0, fresh.stderr
    doc = json.loads(fresh.stdout)
    assert doc["reused"] is True and doc["run_id"] == first["run_id"]
    assert [s["status"] for s in doc["steps"]] == ["reused", "reused"]
    for out in OUTS:
        assert (clone / out).read_bytes() == (local / out).read_bytes(), out
    assert len(jobs_of(ray_cluster.address, experiment)) == 1  # nothing went to the cluster again
