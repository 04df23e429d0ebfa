"""The objects one step on Kubernetes needs, as plain manifests (pure: no client, no network).

- a batch/v1 Job, created suspended (`spec.suspend`) and resumed once the objects its pod reads exist: one pod,
  never retried (`backoffLimit: 0`), `activeDeadlineSeconds` = the step's timeout, removed by the TTL controller
  if the bot could not delete it;
- a Secret with the variables that look like credentials (tracking tokens, cloud keys), read through
  `secretKeyRef`, so they are never in the Job's spec (which `kubectl get job -o yaml` shows to anyone who may
  read Jobs);
- a ConfigMap with `remote_entry.py`, mounted read-only: the image needs only Python and mlflow, not mlops-bot.

The Secret and the ConfigMap name the Job as their owner, so deleting the Job (or its TTL) takes them along.
Kubernetes expands `$(VAR)` in `command` and `env[].value` and reads `$$` as `$`: every `$` is doubled, so a
step's shell command reaches the container as written.
"""

from __future__ import annotations

import math
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from ...config.backends import StepBackend

ENTRY_DIR = "/opt/mlops-bot"
ENTRY_FILE = "remote_entry.py"
WORK_DIR = "/mlops-bot/work"  # an emptyDir: remote_entry unpacks the working directory here
CONTAINER = "step"
MANAGED_BY = "mlops-bot"
TTL_SECONDS = 3600  # a Job the bot could not delete (it was killed with -9) goes away by itself
NAME_LIMIT = 63  # a Job's name becomes its pods' `job-name` label value: 63 characters at most
# the variables that travel in the Secret: tracking and cloud credentials and anything named like a secret
SECRET_PATTERNS = ("*TOKEN*", "*PASSWORD*", "*PASSWD*", "*SECRET*", "*KEY*", "*CREDENTIAL*", "*AUTH*",
                   "*_PAT", "AWS_*", "AZURE_*", "GOOGLE_*", "GCP_*", "MLFLOW_TRACKING_USERNAME")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Manifests:
    name: str  # the Job's, the Secret's and the ConfigMap's
    namespace: str
    job: dict[str, Any]
    secret: dict[str, Any] | None  # None: nothing secret travels
    config_map: dict[str, Any]

    def owned(self, uid: str) -> list[dict[str, Any]]:
        """The Secret and ConfigMap with the created Job (its `uid`) as their owner."""
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": self.name, "uid": uid,
                 "blockOwnerDeletion": False}
        return [{**doc, "metadata": {**doc["metadata"], "ownerReferences": [owner]}}
                for doc in (self.secret, self.config_map) if doc is not None]


def job_name(run_id: str, step: str, suffix: str | None = None) -> str:
    """`mlops-bot-<run id 8>-<step>-<random 5>`: a DNS-1123 label of at most 63 characters."""
    suffix = suffix or "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
    head = f"mlops-bot-{_dns(run_id)[:8]}".rstrip("-")
    room = NAME_LIMIT - len(head) - len(suffix) - 2
    middle = _dns(step)[:room].strip("-") or "step"
    return f"{head}-{middle}-{suffix}"


def is_secret(name: str) -> bool:
    return any(fnmatchcase(name.upper(), pattern) for pattern in SECRET_PATTERNS)


def manifests(name: str, namespace: str, spec: JobSpec) -> Manifests:
    """The Job, its Secret (when a variable is secret) and the ConfigMap for one step."""
    labels = {"app.kubernetes.io/managed-by": MANAGED_BY, "mlops-bot/run-id": label_value(spec.run_id),
              "mlops-bot/step": label_value(spec.step)}
    meta = {"name": name, "namespace": namespace, "labels": labels,
            "annotations": {"mlops-bot/step": spec.step, "mlops-bot/run-id": spec.run_id}}
    hidden = {k: v for k, v in spec.env.items() if is_secret(k)}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
              "stringData": dict(hidden)} if hidden else None
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {ENTRY_FILE: spec.entry_source}}
    env = [{"name": k, "valueFrom": {"secretKeyRef": {"name": name, "key": k}}} if k in hidden
           else {"name": k, "value": escape(v)} for k, v in sorted(spec.env.items())]
    container: dict[str, Any] = {
        "name": CONTAINER, "image": spec.backend.image, "imagePullPolicy": "IfNotPresent",
        "command": [escape(arg) for arg in spec.command], "workingDir": WORK_DIR, "env": env,
        "volumeMounts": [{"name": "entry", "mountPath": ENTRY_DIR, "readOnly": True},
                         {"name": "work", "mountPath": WORK_DIR}]}
    quantities = resources(spec.backend)
    if quantities:
        container["resources"] = {"requests": quantities, "limits": dict(quantities)}
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container],
                           "volumes": [{"name": "entry", "configMap": {"name": name, "defaultMode": 0o444}},
                                       {"name": "work", "emptyDir": {}}]}
    if spec.backend.service_account:
        pod["serviceAccountName"] = spec.backend.service_account
    else:  # the step has no business with the API server
        pod["automountServiceAccountToken"] = False
    job_spec: dict[str, Any] = {"backoffLimit": 0, "suspend": True, "ttlSecondsAfterFinished": TTL_SECONDS,
                                "template": {"metadata": {"labels": labels}, "spec": pod}}
    if spec.timeout:
        job_spec["activeDeadlineSeconds"] = max(1, math.ceil(spec.timeout))
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec}
    return Manifests(name, namespace, job, secret, config_map)


@dataclass(frozen=True)
class JobSpec:
    """What the manifests are made of."""

    run_id: str
    step: str
    command: list[str]  # what the container runs (remote_entry.py around the step's command)
    env: Mapping[str, str]
    backend: StepBackend
    entry_source: str  # remote_entry.py's text
    timeout: float | None = None


def entry_command(entrypoint: list[str]) -> list[str]:
    """job.entrypoint()'s `python -m mlops_bot.pipeline.remote_entry ...` as `python <mounted file> ...`."""
    assert entrypoint[:2] == ["python", "-m"], entrypoint
    return ["python", f"{ENTRY_DIR}/{ENTRY_FILE}", *entrypoint[3:]]


def resources(backend: StepBackend) -> dict[str, str]:
    """num_cpus, memory and num_gpus as Kubernetes quantities (requests = limits: the step gets what it asked
    for and no more). ValueError for a fractional GPU, which Kubernetes cannot schedule."""
    out: dict[str, str] = {}
    if backend.num_cpus:
        millis = math.ceil(backend.num_cpus * 1000)
        out["cpu"] = str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
    if backend.memory:
        out["memory"] = str(backend.memory)
    if backend.num_gpus:
        if backend.num_gpus != int(backend.num_gpus):
            raise ValueError(f"num_gpus {backend.num_gpus:g}: Kubernetes gives whole GPUs only (nvidia.com/gpu)")
        out["nvidia.com/gpu"] = str(int(backend.num_gpus))
    return out


def escape(text: str) -> str:
    """Kubernetes reads `$(VAR)` as a variable and `$$` as `$` in commands and env values."""
    return text.replace("$", "$$")


def label_value(text: str) -> str:
    """`text` as a label value (63 characters, alphanumeric at both ends); the annotation keeps the original."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63].strip("-_.")
    assert _LABEL_VALUE.match(value)
    return value


def _dns(text: str) -> str:
    return _NOT_DNS.sub("-", text.lower()).strip("-")
