"""`python -m mlops_bot.pipeline.remote_entry`: what a cluster runs around a step. Against MLflow's own file store
(the wrapper is MLflow's client, whatever the store): the outs land where Tracker.upload puts them, the step's
exit code is kept, a missing out is exit 3, a working directory archive is unpacked confined, and SIGTERM reaches
the step's whole process group."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from mlops_bot.pipeline.remote_entry import UPLOADED

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow  # each case starts a Python that imports mlflow


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """MLflow's SQLite store with a local artifact root, once per module (its migrations take seconds)."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return uri, MlflowClient(uri).create_experiment("e", artifact_location=(folder / "artifacts").as_uri())


@pytest.fixture
def tracking(store: tuple[str, str]) -> tuple[dict[str, str], str]:
    from mlflow.tracking import MlflowClient

    uri, experiment = store
    run_id = MlflowClient(uri).create_run(experiment).info.run_id
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(Path(__file__).parents[2])}
    return env, run_id


def entry(cwd: Path, env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops_bot.pipeline.remote_entry", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def listed(env: dict[str, str], run_id: str) -> list[str]:
    from mlflow.tracking import MlflowClient

    client, found, todo = MlflowClient(env["MLFLOW_TRACKING_URI"]), [], [""]
    while todo:
        for info in client.list_artifacts(run_id, todo.pop() or None):
            (todo.append(info.path) if info.is_dir else found.append(info.path))
    return sorted(found)


def test_the_outs_go_where_the_bot_uploads_them(tmp_path: Path, tracking: tuple[dict[str, str], str]) -> None:
    env, run_id = tracking
    work = tmp_path / "work"
    work.mkdir()
    script = "mkdir -p build/model && echo m > build/model/MLmodel && echo 1,2 > build/data.csv && echo hello"
    done = entry(work, env, "--run-id", run_id, "--step", "train", "--out", "build/data.csv", "--out", "build/model",
                 "--model", "build/model", "--", "/bin/sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert "hello" in done.stdout and f"{UPLOADED} {run_id}: build/data.csv, build/model" in done.stdout
    assert listed(env, run_id) == ["model/MLmodel", "outs/build/data.csv"]  # the model once, under model/


def test_a_failing_step_keeps_its_code_and_uploads_nothing(tmp_path: Path,
                                                          tracking: tuple[dict[str, str], str]) -> None:
    env, run_id = tracking
    done = entry(tmp_path, env, "--run-id", run_id, "--step", "s", "--out", "o.txt", "--",
                 "/bin/sh", "-c", "echo o > o.txt; exit 7")
    assert done.returncode == 7 and listed(env, run_id) == []


def test_a_missing_out_is_exit_3_with_its_name(tmp_path: Path, tracking: tuple[dict[str, str], str]) -> None:
    env, run_id = tracking
    done = entry(tmp_path, env, "--run-id", run_id, "--step", "s", "--out", "a.txt", "--out", "b.txt", "--",
                 "/bin/sh", "-c", "echo a > a.txt")
    assert done.returncode == 3 and "did not write b.txt" in done.stderr
    assert listed(env, run_id) == []


def _archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _log_archive(tmp_path: Path, env: dict[str, str], run_id: str, members: dict[str, bytes]) -> str:
    from mlflow.tracking import MlflowClient

    staged = tmp_path / "staged" / "workdir.tar.gz"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(_archive(members))
    MlflowClient(env["MLFLOW_TRACKING_URI"]).log_artifact(run_id, str(staged), "mlops-bot/steps/s")
    return "mlops-bot/steps/s/workdir.tar.gz"


def test_the_working_directory_is_unpacked_before_the_step(tmp_path: Path,
                                                          tracking: tuple[dict[str, str], str]) -> None:
    env, run_id = tracking
    artifact = _log_archive(tmp_path, env, run_id, {"train.py": b"print('trained')\n", "data/x.csv": b"a\n"})
    work = tmp_path / "pod"
    work.mkdir()
    done = entry(work, env, "--run-id", run_id, "--step", "s", "--workdir-artifact", artifact, "--",
                 sys.executable, "train.py")
    assert done.returncode == 0, done.stderr
    assert "trained" in done.stdout and (work / "data" / "x.csv").read_text() == "a\n"


def test_an_archive_cannot_write_outside_the_working_directory(tmp_path: Path,
                                                               tracking: tuple[dict[str, str], str]) -> None:
    env, run_id = tracking
    artifact = _log_archive(tmp_path, env, run_id, {"../escaped.txt": b"x"})
    work = tmp_path / "pod"
    work.mkdir()
    done = entry(work, env, "--run-id", run_id, "--step", "s", "--workdir-artifact", artifact, "--", "true")
    assert done.returncode != 0 and "outside the destination" in done.stderr
    assert not (tmp_path / "escaped.txt").exists()


def test_sigterm_reaches_the_steps_whole_group(tmp_path: Path, tracking: tuple[dict[str, str], str]) -> None:
    env, run_id = tracking
    script = "sleep 60 & echo $! > grandchild.pid; wait"
    proc = subprocess.Popen([sys.executable, "-m", "mlops_bot.pipeline.remote_entry", "--run-id", run_id, "--step",
                             "s", "--", "/bin/sh", "-c", script], cwd=tmp_path, env=env,
                            start_new_session=True)  # as Ray's supervisor and a container start it
    pid_file = tmp_path / "grandchild.pid"
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # to the wrapper alone, as Kubernetes signals PID 1
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(grandchild):
        assert time.monotonic() < deadline, "the step's child outlived the cancelled job"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone for our purpose
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_a_rescoring_fetches_the_model_and_returns_its_results_to_one_folder(
        tmp_path: Path, tracking: tuple[dict[str, str], str]) -> None:
    from mlflow.tracking import MlflowClient

    env, run_id = tracking
    model = tmp_path / "model"
    model.mkdir()
    (model / "w").write_text("0.5")
    MlflowClient(env["MLFLOW_TRACKING_URI"]).log_artifacts(run_id, str(model), "model")
    work = tmp_path / "pod"
    work.mkdir()
    script = ("import json, os; w = open(os.path.join(os.environ['MODEL'], 'w')).read(); "
              "json.dump({'w': float(w), 'tracking': os.environ['MLFLOW_TRACKING_URI']}, open('r/metrics.json', 'w'))")
    done = entry(work, {**env, "MODEL": "r/model"}, "--run-id", run_id, "--step", "evaluate",
                 "--fetch", "model=r/model", "--out", "r/metrics.json", "--optional-out", "r/predictions.csv",
                 "--out-dir", "record/k1", "--scratch-tracking", "--", sys.executable, "-c", script)
    assert done.returncode == 0, done.stderr
    assert listed(env, run_id) == ["model/w", "record/k1/metrics.json"]  # by name; the absent predictions skipped
    import json

    written = json.loads((work / "r" / "metrics.json").read_text())
    assert written["w"] == 0.5 and written["tracking"].endswith("mlops-bot-scratch.db")  # never the server


@pytest.mark.parametrize("spec", ["model=../outside", "model=/tmp/abs", "model"])
def test_a_fetch_stays_inside_the_working_directory(tmp_path: Path, tracking: tuple[dict[str, str], str],
                                                    spec: str) -> None:
    env, run_id = tracking
    done = entry(tmp_path, env, "--run-id", run_id, "--step", "s", "--fetch", spec, "--", "true")
    assert done.returncode != 0 and "--fetch wants ARTIFACT=DEST with a relative DEST" in done.stderr
