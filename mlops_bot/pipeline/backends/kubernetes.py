"""`backend: kubernetes`: the step as a Job on a Kubernetes cluster (the declared image, its resources, the
tracking run's variables), its log streamed into the CI log, deleted afterwards whatever happened.

1. The working directory (`workdir.stage_workdir`) goes to the tracking run as a tarball; remote_entry unpacks it
   in the pod's emptyDir, runs the step and uploads its outs to the run, where run_remote fetches them.
2. The Job is created suspended; its Secret (credentials) and ConfigMap (remote_entry.py) are created naming it
   as their owner; then the Job is resumed, so its pod never starts before what it reads exists.
3. kubernetes_watch follows it to Complete or Failed (DeadlineExceeded: the step's timeout).
4. The Job (propagationPolicy Background: its pods too), the Secret and the ConfigMap are deleted: after success,
   failure, or Ctrl-C/SIGTERM (under interrupts_held, so a second signal cannot cut the deletion short).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ...errors import StepFailed
from ...support.processes import interrupts_held
from .base import WORKDIR_ARTIFACT, RemoteStep
from .kubernetes_client import Cluster, Refused, connect
from .kubernetes_manifest import TTL_SECONDS, JobSpec, Manifests, entry_command, job_name, manifests
from .kubernetes_watch import Outcome, follow
from .workdir import stage_workdir, tarball

MERGE_PATCH = "application/merge-patch+json"
WORKDIR_FILE = "workdir.tar.gz"
CLEANUP_ATTEMPTS = 2  # the step is over: a gone API server is reported, not waited for


def run(job: RemoteStep) -> float:
    """Runs the step as a Job; its duration, or StepFailed (exit 3) when it failed, timed out or was refused."""
    assert job.step.backend is not None
    cluster = connect(job.step.backend, job.step.name, os.environ)
    folder = f"{WORKDIR_ARTIFACT}/{job.step.name}"
    plan = _plan(job, cluster.namespace, f"{folder}/{WORKDIR_FILE}")  # a bad setting fails before any upload
    _ship_workdir(job, folder)
    created: list[str] = []  # kinds, in the order they were created
    try:
        outcome = _start_and_follow(job, cluster, plan, created)
    except KeyboardInterrupt:
        job.echo(f"mlops-bot: {job.progress}: cancelled; deleting Job {plan.name} on {cluster.url}")
        raise
    finally:  # success, failure or Ctrl-C/SIGTERM alike; a second signal waits for the deletion
        with interrupts_held():
            _delete(cluster, plan, created, job)
    return _result(job, cluster, outcome)


def _ship_workdir(job: RemoteStep, folder: str) -> None:
    """Uploads the step's working directory to the run, as `folder`/workdir.tar.gz (remote_entry unpacks it)."""
    with tempfile.TemporaryDirectory(prefix="mlops-bot-k8s-") as tmp:
        staged = Path(tmp) / "workdir"
        staged.mkdir()
        stage_workdir(job.root, job.step, staged)
        job.run.upload_file(tarball(staged, Path(tmp) / WORKDIR_FILE), folder)


def _plan(job: RemoteStep, namespace: str, workdir_artifact: str) -> Manifests:
    from .. import remote_entry

    backend = job.step.backend
    assert backend is not None and backend.image, "config/backends requires an image"
    spec = JobSpec(job.run.run_id, job.step.name, entry_command(job.entrypoint(workdir_artifact)), job.env,
                   backend, Path(remote_entry.__file__).read_text(encoding="utf-8"), job.step.timeout)
    try:
        return manifests(job_name(job.run.run_id, job.step.name), namespace, spec)
    except ValueError as exc:
        raise StepFailed(job.step.name, None, f"step '{job.step.name}': {exc}; fix pipeline.{job.step.name}."
                         "backend in ml.yaml.") from None


def _start_and_follow(job: RemoteStep, cluster: Cluster, plan: Manifests, created: list[str]) -> Outcome:
    ns = cluster.namespace
    made = _create(cluster, created, "job", cluster.batch.create_namespaced_job, plan.job)
    for doc in plan.owned(str((made.get("metadata") or {}).get("uid", ""))):
        if doc["kind"] == "Secret":
            _create(cluster, created, "secret", cluster.core.create_namespaced_secret, doc)
        else:
            _create(cluster, created, "configmap", cluster.core.create_namespaced_config_map, doc)
    cluster.call("patch jobs", cluster.batch.patch_namespaced_job, plan.name, ns, {"spec": {"suspend": False}},
                 _content_type=MERGE_PATCH)
    job.echo(f"mlops-bot: {job.progress}: Job {plan.name} started in namespace {ns} on {cluster.url} "
             f"(image {job.step.backend.image if job.step.backend else '?'})")
    return follow(cluster, plan.name, job.progress, job.echo)


def _create(cluster: Cluster, created: list[str], kind: str, method: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """Creates `doc`, noting its kind first: an interrupt may come after the server made it; an error answer
    means it was not made."""
    created.append(kind)
    try:
        return cluster.call(f"create {kind}s", method, cluster.namespace, doc) or {}
    except Refused:
        created.remove(kind)
        raise


def _delete(cluster: Cluster, plan: Manifests, created: list[str], job: RemoteStep) -> None:
    """Deletes what was created (a missing one is fine: the TTL controller or a person was first)."""
    ns, body = cluster.namespace, {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
    calls = {"job": ("delete jobs", cluster.batch.delete_namespaced_job),
             "secret": ("delete secrets", cluster.core.delete_namespaced_secret),
             "configmap": ("delete configmaps", cluster.core.delete_namespaced_config_map)}
    left, why = [], ""
    for kind in created:
        action, method = calls[kind]
        try:
            cluster.call(action, method, plan.name, ns, body=body, missing_ok=True, attempts=CLEANUP_ATTEMPTS)
        except StepFailed as exc:  # the step's own outcome matters more: say what is left behind
            left.append(kind)
            why = why or str(exc).split(";")[0].removeprefix(f"step '{job.step.name}': ")
    if left:
        job.echo(f"mlops-bot: warning: {', '.join(left)} {plan.name} in namespace {ns} could not be deleted ({why}); "
                 f"delete them with: kubectl delete {','.join(left)} {plan.name} -n {ns} (a finished Job also goes "
                 f"{TTL_SECONDS}s after it ended, with its Secret and ConfigMap)")


def _result(job: RemoteStep, cluster: Cluster, outcome: Outcome) -> float:
    name = job.step.name
    if outcome.condition == "Complete":
        return outcome.duration
    if outcome.reason == "DeadlineExceeded":
        raise StepFailed(name, None, f"step '{name}' timed out after {job.step.timeout or 0:g}s on Kubernetes "
                         f"({cluster.url}, Job activeDeadlineSeconds) and was stopped; raise pipeline.{name}.timeout "
                         "or make the step faster.", "\n".join(outcome.tail))
    code = outcome.exit_code
    how = (f"failed with exit code {code}" if code is not None and code >= 0 else
           f"was killed by signal {-code}" if code is not None else f"failed ({outcome.reason}: {outcome.message})")
    raise StepFailed(name, code, f"step '{name}' {how} on Kubernetes ({cluster.url}) after "
                     f"{outcome.duration:.1f}s; {'its last lines:' if outcome.tail else 'it printed nothing.'}",
                     "\n".join(outcome.tail))
