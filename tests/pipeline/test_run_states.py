"""Every run the bot starts on a real MLflow server ends FINISHED, FAILED or KILLED: on a step failure, an
artifact upload the server refuses, SIGINT and SIGTERM; a re-run after a failure leaves no run RUNNING."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlops_bot.errors import RemoteError
from mlops_bot.pipeline.execute import run_pipeline
from mlops_bot.pipeline.result import RunOptions
from mlops_bot.registry import open_registry
from mlops_bot.registry.mlflow.client import MlflowRegistry
from mlops_bot.registry.mlflow.http import RetryPolicy
from tests.helpers.pipeline_project import cli, config, make_project, run_until
from tests.servers.mlflow_server import MlflowServer, start

pytestmark = pytest.mark.mlflow

SLOW_TRAIN = """\
import pathlib, subprocess, time
child = subprocess.Popen(["sleep", "60"])
pathlib.Path("{marker}").write_text(str(child.pid))
time.sleep(60)
"""


def statuses(uri: str, project: Path, experiment: str) -> list[str]:
    registry = open_registry(uri, project)
    try:
        return [r.status for r in registry.search_runs([registry.get_or_create_experiment(experiment).experiment_id])]
    finally:
        registry.close()


def gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_step_kills_the_step_group_and_ends_the_run_killed(
        mlflow_server: MlflowServer, tmp_path: Path, sig: signal.Signals) -> None:
    experiment = f"signal-{sig.name}-{tmp_path.name}"
    project = make_project(tmp_path / "project", uri=mlflow_server.uri, experiment=experiment)
    marker = tmp_path / "child.pid"
    (project / "train.py").write_text(SLOW_TRAIN.format(marker=marker))
    proc = run_until(project, marker)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr  # documented: interrupted, by Ctrl-C or a CI cancellation alike
    assert "interrupted" in stderr
    assert gone(int(marker.read_text()))
    assert statuses(mlflow_server.uri, project, experiment) == ["KILLED"]


def test_a_failed_step_ends_the_run_failed(mlflow_server: MlflowServer, tmp_path: Path) -> None:
    experiment = f"step-fails-{tmp_path.name}"
    project = make_project(tmp_path / "project", uri=mlflow_server.uri, experiment=experiment)
    (project / "evaluate.py").write_text("import sys\nsys.exit(5)\n")
    assert cli(project).returncode == 3
    assert cli(project).returncode == 3  # prepare and train cached; evaluate fails again
    assert statuses(mlflow_server.uri, project, experiment) == ["FAILED", "FAILED"]


@pytest.fixture(scope="module")
def refusing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """Proxies artifacts into a destination it cannot create (below a plain file): every upload fails."""
    root = tmp_path_factory.mktemp("mlflow-refusing")
    (root / "plain-file").write_text("")
    server = start(root, ["--serve-artifacts", "--artifacts-destination", str(root / "plain-file" / "artifacts")])
    try:
        yield server
    finally:
        server.stop()


FAST = RetryPolicy(total_seconds=1.0, initial_wait=0.01, max_wait=0.1, retry_after_cap=0.1, timeout=10.0)


def test_a_server_that_cannot_store_artifacts_is_found_before_any_step(refusing_server: MlflowServer,
                                                                       tmp_path: Path) -> None:
    experiment = f"destination-broken-{tmp_path.name}"
    project = make_project(tmp_path / "project", uri=refusing_server.uri, experiment=experiment)
    registry = MlflowRegistry(refusing_server.uri, {}, retry=FAST)
    try:
        with pytest.raises(RemoteError, match="could not be written; nothing was run"):
            run_pipeline(config(project), registry, RunOptions(echo=lambda line: None))
    finally:
        registry.close()
    assert not (project / "build").exists()  # no step ran
    assert statuses(refusing_server.uri, project, experiment) == []


class RefusingModelUploads(httpx.BaseTransport):
    """The network as it is, but the server answers 500 to every upload of a model file: the check before the
    steps passes, the upload after them fails."""

    def __init__(self) -> None:
        self._real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and "/artifacts/model/" in request.url.path:
            return httpx.Response(500, json={"error_code": "INTERNAL_ERROR", "message": "disk full"})
        return self._real.handle_request(request)


def test_a_refused_upload_ends_the_run_failed_and_a_rerun_leaks_no_run(mlflow_server: MlflowServer,
                                                                       tmp_path: Path) -> None:
    experiment = f"upload-refused-{tmp_path.name}"
    project = make_project(tmp_path / "project", uri=mlflow_server.uri, experiment=experiment)
    refusing = MlflowRegistry(mlflow_server.uri, {}, retry=FAST, transport=RefusingModelUploads())
    quiet = RunOptions(echo=lambda line: None)
    try:
        with pytest.raises(RemoteError, match="disk full"):
            run_pipeline(config(project), refusing, quiet)
        with pytest.raises(RemoteError):  # every step cached now: the outs are recorded in a new run, refused again
            run_pipeline(config(project), refusing, quiet)
    finally:
        refusing.close()
    assert statuses(mlflow_server.uri, project, experiment) == ["FAILED", "FAILED"]


STUBBORN_TRAIN = """\
import os, pathlib, signal, subprocess, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
quiet = os.open(os.devnull, os.O_WRONLY)  # the output pipe closes: only the signals can stop this group
os.dup2(quiet, 1)
os.dup2(quiet, 2)
child = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60"])
pathlib.Path("{marker}").write_text(f"{{os.getpid()}} {{child.pid}}")
time.sleep(60)
"""


def test_a_second_signal_while_the_step_group_is_stopped_still_stops_all_of_it(
        mlflow_server: MlflowServer, tmp_path: Path) -> None:
    """CI sends SIGINT, then SIGTERM while the step (ignoring SIGTERM) is given its grace: the group is still
    killed, and the run ends KILLED."""
    experiment = f"stubborn-{tmp_path.name}"
    project = make_project(tmp_path / "project", uri=mlflow_server.uri, experiment=experiment)
    marker = tmp_path / "pids"
    (project / "train.py").write_text(STUBBORN_TRAIN.format(marker=marker))
    proc = run_until(project, marker)
    step, grandchild = map(int, marker.read_text().split())
    try:
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)  # within the grace the bot gives the group after its SIGTERM
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 130, stderr
        assert gone(step) and gone(grandchild)
        assert statuses(mlflow_server.uri, project, experiment) == ["KILLED"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(step, signal.SIGKILL)
