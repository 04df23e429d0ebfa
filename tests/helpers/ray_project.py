"""A small git project whose `train` step runs on a Ray cluster (`backend: ray`), for tests/pipeline/backends and
benchmarks/ray_backend.py.

`prepare` runs locally; `train` reads params.yaml and prepare's out, writes the model and metrics, and logs through
mlflow to the pipeline's run (a metric, the run id it saw, the directory it ran in). `.gitignore` names build/ and
data/, so the shipped working directory must not follow it. Steps are `python ...` strings: on the cluster `python`
is the cluster's; `cli` puts the .venv's first on PATH for a local run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers.git import git

BIN = Path(sys.executable).parent

PREPARE = textwrap.dedent("""\
    import pathlib
    rows = pathlib.Path("data/raw.csv").read_text().splitlines()
    pathlib.Path("build").mkdir(exist_ok=True)
    pathlib.Path("build/train.csv").write_text("\\n".join(rows[::2]) + "\\n")
    """)

TRAIN = textwrap.dedent("""\
    import json, os, pathlib
    import mlflow, yaml
    seen = os.environ["MLFLOW_RUN_ID"]  # read first: mlflow's start_run takes it out of the environment
    c = yaml.safe_load(open("params.yaml"))["train"]["C"]
    rows = pathlib.Path("build/train.csv").read_text().split()
    model = pathlib.Path("build/model")
    model.mkdir(parents=True, exist_ok=True)
    (model / "model.txt").write_text(f"C={c} rows={len(rows)}\\n")
    (model / "MLmodel").write_text("flavors: {}\\n")
    pathlib.Path("build/metrics.json").write_text(json.dumps({"accuracy": 0.75, "rows": len(rows)}))
    mlflow.log_metric("step_logged", 1.0)
    mlflow.set_tag("step.saw_run_id", seen)
    mlflow.set_tag("step.cwd", os.getcwd())
    print("trained with C", c, flush=True)
    """)

# a step that works until stopped, printing its pid; it exits when remote_entry above it is gone (a SIGKILLed
# entrypoint leaves the step's own session behind: this keeps a killed cluster from leaving an orphan)
SLEEPY = textwrap.dedent("""\
    import os, time
    print("started", os.getpid(), flush=True)
    def parent(pid):
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    above = [os.getppid(), parent(os.getppid())]
    def alive(pid):
        try:
            return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
    for _ in range(900):
        if not all(alive(pid) for pid in above):
            raise SystemExit(1)
        time.sleep(0.1)
    """)

ML_YAML = """\
version: 1
model: {{name: ray-demo, artifact: build/model}}
tracking: {{uri: "{uri}", experiment: "{experiment}"}}
params: params.yaml
pipeline:
  prepare:
    cmd: python prepare.py
    deps: [prepare.py, data/raw.csv]
    outs: [build/train.csv]
  train:
    cmd: python train.py
{backend}    deps: [train.py, build/train.csv]
    params: [train.C]
    outs: [build/model]
    metrics: build/metrics.json
"""


def backend_yaml(address: str | None, **fields: Any) -> str:
    """The train step's `backend:` lines; None: a local step."""
    if address is None:
        return ""
    extra = "".join(f", {key}: {json.dumps(value)}" for key, value in fields.items())
    return f"    backend: {{type: ray, address: \"{address}\"{extra}}}\n"


def make_project(root: Path, uri: str, experiment: str, backend: str, train: str = TRAIN,
                 timeout: float | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "prepare.py").write_text(PREPARE)
    (root / "train.py").write_text(train)
    (root / "data").mkdir()
    (root / "data" / "raw.csv").write_text("".join(f"{i},{i % 3}\n" for i in range(40)))
    (root / "params.yaml").write_text("train: {C: 0.5}\n")
    (root / ".gitignore").write_text("build/\ndata/\n.mlops-bot/\n")
    lines = backend + (f"    timeout: {timeout:g}\n" if timeout is not None else "")
    (root / "ml.yaml").write_text(ML_YAML.format(uri=uri, experiment=experiment, backend=lines))
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "project")
    return root


def environment() -> dict[str, str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    return env


def cli(project: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`mlops-bot -C PROJECT run ARGS` as a subprocess."""
    return subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(project), "run", *args], env=environment(),
                          capture_output=True, text=True, timeout=timeout, check=False)


def start_cli(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mlops_bot", "-C", str(project), "run", *args],
                            env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def jobs_of(address: str, experiment: str) -> list[Any]:
    """The Ray jobs a project of `experiment` submitted (its runtime env carries MLFLOW_EXPERIMENT_NAME)."""
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(address).list_jobs()
    return [j for j in jobs if ((j.runtime_env or {}).get("env_vars") or {}).get("MLFLOW_EXPERIMENT_NAME")
            == experiment]


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60, proc: subprocess.Popen[str] | None = None
             ) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"mlops-bot exited {proc.returncode} before {what}: {proc.communicate()[1]}")
        time.sleep(0.25)
    raise AssertionError(f"no {what} after {timeout}s")


def running_job(address: str, experiment: str, proc: subprocess.Popen[str] | None = None) -> Any:
    """The project's Ray job once it is RUNNING and its step has printed `started`."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)

    def started() -> Any:
        for job in jobs_of(address, experiment):
            if str(job.status) == "RUNNING" and "started" in client.get_job_logs(job.submission_id):
                return job
        return None

    return wait_for(started, "running Ray job", proc=proc)
