"""`backend: ray`: one step as a job on a Ray cluster, through its Jobs API (`JobSubmissionClient`, ray[default]).

The job ships the step's working directory (`workdir.stage_workdir`, as Ray's `working_dir`) and this package (as a
`py_modules` entry, so the cluster needs only Python and mlflow for `python -m mlops_bot.pipeline.remote_entry`),
with the portable environment as `env_vars`, `backend.pip` as its `pip` and the declared resources as the
entrypoint's. Its log is echoed as it comes and its status polled (pipeline/backends/ray_watch); a timeout or Ctrl-C
stops the job on the cluster. The outs travel through the tracking run (base.run_remote fetches them)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import StepFailed, UsageError
from ...support.processes import interrupts_held
from ...support.state import local_state_dir, state_path
from ...support.urls import redact, redact_text
from . import ray_watch
from .base import RemoteStep
from .workdir import stage_workdir

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

CONNECT_ATTEMPTS = 3
CONNECT_TIMEOUT_S = 5.0  # one probe of the dashboard; Ray's own client waits without a bound
CONNECT_BACKOFF_S = 1.0  # doubled after each failed attempt
PACKAGE_DIR = Path(__file__).resolve().parents[2]  # mlops_bot/: remote_entry runs from it on the cluster
STATE_DIR = "ray"  # .mlops-bot/ray/: the working directories being submitted
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]+")


def run(job: RemoteStep) -> float:
    """Runs the step as a Ray job to its end; its duration, or StepFailed (exit 3) with what the cluster said."""
    address = cluster_address(job)
    client = connect(address, job.step.name)
    started = time.monotonic()
    submission = f"mlops-bot-{_UNSAFE_ID.sub('-', job.step.name)[:40]}-{job.run.run_id[:12]}-{uuid.uuid4().hex[:8]}"
    watch: ray_watch.Watch | None = None
    try:
        submit(client, job, address, submission)
        watch = ray_watch.Watch(client, job, submission, address)
        watch.until_done(started)
    except KeyboardInterrupt:
        with interrupts_held():  # a second Ctrl-C (or CI's SIGTERM after its SIGINT) must not leave the job running
            job.echo(f"{job.progress}: interrupted; stopping Ray job {submission}")
            ray_watch.stop_job(client, submission, address, job.echo)
            if watch is not None:
                watch.log.close(None)
        raise
    return time.monotonic() - started


def cluster_address(job: RemoteStep) -> str:
    """The dashboard's Jobs API URL: backend.address, else RAY_ADDRESS from the bot's environment."""
    name = job.step.name
    raw = (job.step.backend.address if job.step.backend else None) or os.environ.get("RAY_ADDRESS", "")
    raw = raw.strip()
    if not raw:
        raise UsageError(f"step '{name}' runs on ray but no cluster is named: set pipeline.{name}.backend.address "
                         "in ml.yaml (the head's dashboard, e.g. http://ray-head:8265) or RAY_ADDRESS in the job's "
                         "environment.")
    if "://" not in raw:
        raw = f"http://{raw}"
    if raw.split("://", 1)[0].lower() not in ("http", "https"):
        raise UsageError(f"step '{name}': the Ray address {redact(raw)} is not the dashboard's HTTP address; the "
                         "Jobs API answers there (e.g. http://ray-head:8265), not at ray:// or the GCS port.")
    return raw.rstrip("/")


def connect(address: str, step: str) -> JobSubmissionClient:
    """A client of the cluster, after a bounded probe (a few attempts, each with a timeout)."""
    _probe(address, step)  # before importing ray: an unreachable cluster costs no second of imports
    from ray.job_submission import JobSubmissionClient

    for name in ("ray.dashboard.modules.dashboard_sdk", "ray._private.runtime_env.packaging",
                 "ray.dashboard.modules.job.sdk"):
        logging.getLogger(name).setLevel(logging.WARNING)  # "Uploading package ..." is not the step's log
    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # a version check, an auth proxy's refusal: Ray says which
        raise StepFailed(step, None, f"the Ray cluster at {redact(address)} refused the Jobs API client: "
                         f"{_said(exc)}; check that it runs Ray 2.9 or later and that this runner may use it."
                         ) from None


def _probe(address: str, step: str) -> None:
    reason = ""
    for attempt in range(CONNECT_ATTEMPTS):
        if attempt:
            time.sleep(CONNECT_BACKOFF_S * 2 ** (attempt - 1))
        try:
            # without user:password@ (urllib cannot use them there); any answer, a 401 too, means reachable
            with urllib.request.urlopen(f"{redact(address)}/api/version", timeout=CONNECT_TIMEOUT_S):
                return
        except urllib.error.HTTPError:
            return  # something answers: the client's own check says what it is
        except (OSError, ValueError) as exc:
            reason = redact_text(str(getattr(exc, "reason", exc)))
    raise StepFailed(step, None, f"cannot reach the Ray cluster at {redact(address)} ({reason}; {CONNECT_ATTEMPTS} "
                     f"attempts): check pipeline.{step}.backend.address or RAY_ADDRESS, that the head's dashboard "
                     "listens there (ray start --dashboard-host) and that this runner can reach it.")


def submit(client: JobSubmissionClient, job: RemoteStep, address: str, submission: str) -> None:
    """Stages the working directory and submits the job as `submission` (unique per run and step)."""
    backend, name = job.step.backend, job.step.name
    staging = local_state_dir(state_path(job.root, STATE_DIR))
    with tempfile.TemporaryDirectory(dir=staging, prefix="workdir-") as workdir:
        stage_workdir(job.root, job.step, Path(workdir))
        runtime_env: dict[str, Any] = {"working_dir": workdir, "py_modules": [str(PACKAGE_DIR)],
                                       "env_vars": dict(job.env)}
        if backend is not None and backend.pip:
            runtime_env["pip"] = list(backend.pip)
        try:
            with _every_staged_file():  # uploaded now, content-addressed: the directory may go afterwards
                client.submit_job(entrypoint=shlex.join(job.entrypoint()), submission_id=submission,
                                  runtime_env=runtime_env, metadata={"mlops-bot/run-id": job.run.run_id,
                                                                     "mlops-bot/step": name},
                                  entrypoint_num_cpus=backend.num_cpus if backend else None,
                                  entrypoint_num_gpus=backend.num_gpus if backend else None,
                                  entrypoint_memory=backend.memory if backend else None)
        except Exception as exc:
            raise StepFailed(name, None, f"step '{name}' could not be submitted to the Ray cluster at "
                             f"{redact(address)}: {_said(exc)}") from None
    job.echo(f"{job.progress}: submitted to the Ray cluster at {redact(address)} as job {submission}")


@contextlib.contextmanager
def _every_staged_file() -> Iterator[None]:
    """Ray leaves out what a .gitignore in the working directory names; the staged directory holds exactly the
    step's files (data git ignores among them), so nothing in it may be dropped."""
    key = "RAY_RUNTIME_ENV_IGNORE_GITIGNORE"
    before = os.environ.get(key)
    os.environ[key] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def _said(exc: BaseException) -> str:
    """A library's error in one bounded line, URLs redacted."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact_text(text[:500] + ("..." if len(text) > 500 else ""))
