"""`backend: ray` when things go wrong, on a real Ray head and the real mlflow server: each fault ends `mlops-bot
run` with a clear message and exit 3 (2 for a missing address), the run FAILED or KILLED (never RUNNING), and no
job left running on the cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ray_cluster import RayCluster
from tests.helpers.ray_project import SLEEPY, backend_yaml, cli, jobs_of, make_project, running_job, start_cli, wait_for
from tests.servers.mlflow_server import MlflowServer, free_port

pytestmark = [pytest.mark.slow, pytest.mark.mlflow]


def statuses(uri: str, experiment: str) -> list[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    return [run.info.status for run in client.search_runs([found.experiment_id])]


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    _, stderr = proc.communicate(timeout=timeout)
    return stderr


def job_status(address: str, experiment: str) -> str:
    jobs = jobs_of(address, experiment)
    assert len(jobs) == 1, jobs
    return str(jobs[0].status)


def step_pid(client: Any, submission: str) -> int:
    line = next(x for x in client.get_job_logs(submission).splitlines() if x.startswith("started "))
    return int(line.split()[1])


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def experiment() -> str:
    return f"ray-fault-{uuid.uuid4().hex[:8]}"


def test_an_unreachable_cluster_is_named_after_bounded_retries(mlflow_server: MlflowServer, tmp_path: Path,
                                                               experiment: str) -> None:
    address = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    project = make_project(tmp_path / "p", mlflow_server.uri, experiment, backend_yaml(address))
    started = time.monotonic()
    done = cli(project)
    assert done.returncode == 3, done.stderr
    assert f"cannot reach the Ray cluster at {address}" in done.stderr
    assert "3 attempts" in done.stderr and "pipeline.train.backend.address" in done.stderr
    assert time.monotonic() - started < 60
    assert statuses(mlflow_server.uri, experiment) == ["FAILED"]


def test_no_address_at_all_says_where_to_set_one(mlflow_server: MlflowServer, tmp_path: Path,
                                                 experiment: str) -> None:
    project = make_project(tmp_path / "p", mlflow_server.uri, experiment, "    backend: ray\n")
    done = cli(project)
    assert done.returncode == 2, done.stderr
    assert "pipeline.train.backend.address" in done.stderr and "RAY_ADDRESS" in done.stderr
    assert statuses(mlflow_server.uri, experiment) == ["FAILED"]


def test_a_runtime_env_that_fails_to_build_shows_rays_message(mlflow_server: MlflowServer, ray_cluster: RayCluster,
                                                             tmp_path: Path, experiment: str) -> None:
    project = make_project(tmp_path / "p", mlflow_server.uri, experiment,
                           backend_yaml(ray_cluster.address, pip=["mlops-bot-no-such-package"]))
    done = cli(project)
    assert done.returncode == 3, done.stderr
    assert "failed to build its runtime environment" in done.stderr
    assert "pipeline.train.backend.pip" in done.stderr
    assert "No matching distribution found for mlops-bot-no-such-package" in done.stderr  # Ray's own words
    assert statuses(mlflow_server.uri, experiment) == ["FAILED"]
    assert job_status(ray_cluster.address, experiment) == "FAILED"


@pytest.mark.parametrize("how", ["ray job stop", "kill -9"])
def test_a_step_killed_on_the_cluster_fails_the_run(mlflow_server: MlflowServer, ray_cluster: RayCluster,
                                                    tmp_path: Path, experiment: str, how: str) -> None:
    from ray.job_submission import JobSubmissionClient

    project = make_project(tmp_path / "p", mlflow_server.uri, experiment, backend_yaml(ray_cluster.address),
                           train=SLEEPY)
    proc = start_cli(project)
    job = running_job(ray_cluster.address, experiment, proc)
    client = JobSubmissionClient(ray_cluster.address)
    if how == "ray job stop":
        client.stop_job(job.submission_id)
    else:
        os.kill(step_pid(client, job.submission_id), signal.SIGKILL)  # the step's own process, on this machine
    stderr = finish(proc)
    assert proc.returncode == 3, stderr
    assert f"(job {job.submission_id} at {ray_cluster.address})" in stderr
    if how == "ray job stop":
        assert "step 'train' was stopped on the Ray cluster before it finished" in stderr
    else:
        assert "step 'train' was killed by signal 9 on the Ray cluster" in stderr  # its shell's 137, named
    assert "[train] started" in stderr
    assert statuses(mlflow_server.uri, experiment) == ["FAILED"]


def test_a_step_over_its_timeout_is_stopped_on_the_cluster(mlflow_server: MlflowServer, ray_cluster: RayCluster,
                                                           tmp_path: Path, experiment: str) -> None:
    project = make_project(tmp_path / "p", mlflow_server.uri, experiment, backend_yaml(ray_cluster.address),
                           train=SLEEPY, timeout=8)
    started = time.monotonic()
    done = cli(project)
    assert done.returncode == 3, done.stderr
    assert "step 'train' timed out after 8s and was stopped on the Ray cluster" in done.stderr
    assert "raise pipeline.train.timeout" in done.stderr
    assert time.monotonic() - started < 45
    assert statuses(mlflow_server.uri, experiment) == ["FAILED"]
    assert job_status(ray_cluster.address, experiment) == "STOPPED"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_the_job_and_ends_the_run_killed(mlflow_server: MlflowServer,
                                                                 ray_cluster: RayCluster, tmp_path: Path,
                                                                 experiment: str, sig: signal.Signals) -> None:
    project = make_project(tmp_path / "p", mlflow_server.uri, experiment, backend_yaml(ray_cluster.address),
                           train=SLEEPY)
    proc = start_cli(project)
    running_job(ray_cluster.address, experiment, proc)
    proc.send_signal(sig)
    stderr = finish(proc)
    assert proc.returncode == 130, stderr  # interrupted, by Ctrl-C or a CI cancellation alike
    assert "interrupted; stopping Ray job" in stderr
    assert statuses(mlflow_server.uri, experiment) == ["KILLED"]
    assert job_status(ray_cluster.address, experiment) == "STOPPED"  # stopped before the bot exited


def test_a_cluster_that_goes_away_mid_step_is_named(mlflow_server: MlflowServer,
                                                    throwaway_ray_cluster: RayCluster, tmp_path: Path,
                                                    experiment: str) -> None:
    cluster = throwaway_ray_cluster
    project = make_project(tmp_path / "p", mlflow_server.uri, experiment, backend_yaml(cluster.address),
                           train=SLEEPY)
    proc = start_cli(project)
    job = running_job(cluster.address, experiment, proc)
    from ray.job_submission import JobSubmissionClient

    pid = step_pid(JobSubmissionClient(cluster.address), job.submission_id)
    cluster.crash()
    stderr = finish(proc)
    assert proc.returncode == 3, stderr
    assert (f"lost the Ray cluster at {cluster.address} while step 'train' ran (job {job.submission_id})"
            in stderr)
    assert "run again" in stderr
    assert statuses(mlflow_server.uri, experiment) == ["FAILED"]
    wait_for(lambda: not cluster.processes() and not alive(pid), "end of the crashed cluster and its step", timeout=15)
