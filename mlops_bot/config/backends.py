"""`pipeline.<step>.backend`: where a step runs. `local` (a subprocess of the bot, the default), `ray` (a job on a
Ray cluster, through its Jobs API) or `kubernetes` (a Job from a declared image). The backend is not part of the
step's cache key: the same inputs give the same outs wherever they ran (pipeline/backends)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import Problem

if TYPE_CHECKING:  # config.model imports this module: keep YAML out of the pure core's imports
    from .source import Document

KINDS = ("local", "ray", "kubernetes")
# the fields each remote kind reads besides `type`; the schema lists them all, this says whose they are
ONLY = {"pip": "ray", "image": "kubernetes", "namespace": "kubernetes", "service_account": "kubernetes"}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|[KMGT]i|B)?\s*$", re.IGNORECASE)
_POWERS = {"K": 1, "M": 2, "G": 3, "T": 4}


@dataclass(frozen=True)
class StepBackend:
    type: str = "local"
    address: str | None = None  # ray: the dashboard's Jobs API (http://host:8265); kubernetes: the API server
    num_cpus: float | None = None
    num_gpus: float | None = None
    memory: int | None = None  # bytes
    pip: tuple[str, ...] = ()  # ray: the job's runtime environment installs these
    image: str | None = None  # kubernetes: the container image, with Python and mlflow
    namespace: str | None = None
    service_account: str | None = None

    @property
    def remote(self) -> bool:
        return self.type != "local"


def memory_bytes(value: int | float | str) -> int:
    """4GiB, 4Gi, 512MB, 512M or a number of bytes -> bytes (binary units for Ki/Mi/Gi, decimal for K/M/G)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = _MEMORY.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not an amount of memory (e.g. 4GiB, 512Mi, 2000000000)")
    amount, unit = float(match.group(1)), (match.group(2) or "B").upper()
    if unit == "B":
        return int(amount)
    base = 1024 if "I" in unit else 1000
    return int(amount * base ** _POWERS[unit[0]])


def backend_of(raw: Any) -> StepBackend | None:
    """The checked ml.yaml value (a kind's name, or a mapping with `type`) -> StepBackend; None for local."""
    if raw is None or raw == "local" or (isinstance(raw, dict) and raw.get("type", "local") == "local"):
        return None
    if isinstance(raw, str):
        return StepBackend(type=raw)
    return StepBackend(type=raw["type"], address=raw.get("address"), num_cpus=raw.get("num_cpus"),
                       num_gpus=raw.get("num_gpus"),
                       memory=memory_bytes(raw["memory"]) if raw.get("memory") is not None else None,
                       pip=tuple(raw.get("pip", ())), image=raw.get("image"), namespace=raw.get("namespace"),
                       service_account=raw.get("service_account"))


def backend_problems(doc: Document) -> list[Problem]:
    """What the schema cannot say: each field belongs to its kind, kubernetes needs an image, memory parses, and
    a remote step needs a tracking server it can reach (its outs come back through the run's artifacts)."""
    steps = doc.data.get("pipeline")
    problems: list[Problem] = []
    for name, step in (steps.items() if isinstance(steps, dict) else ()):
        raw = step.get("backend") if isinstance(step, dict) else None
        kind = raw if isinstance(raw, str) else raw.get("type", "local") if isinstance(raw, dict) else "local"
        if kind not in KINDS[1:]:
            continue
        where = ("pipeline", name, "backend")
        problems += _fields(doc, where, kind, raw if isinstance(raw, dict) else {})
        if str(doc.data.get("tracking", {}).get("uri", "local")).strip() in ("", "local"):
            problems.append(doc.problem(where, f"a step on {kind} logs to the tracking run and returns its outs "
                                        "through the run's artifacts, which the embedded store cannot serve to a "
                                        "cluster; set tracking.uri to a tracking server the cluster can reach",
                                        key=True))
    return problems


def _fields(doc: Document, where: tuple[Any, ...], kind: str, raw: dict[str, Any]) -> list[Problem]:
    problems = [doc.problem((*where, key), f"'{key}' is a setting of {owner} steps, not of {kind} ones; remove it",
                            key=True)
                for key, owner in ONLY.items() if key in raw and owner != kind]
    if kind == "kubernetes" and not raw.get("image"):
        problems.append(doc.problem(where, "a kubernetes step runs in a container: add image: (one with Python and "
                                    "mlflow, e.g. the image your training already uses)", key=True))
    gpus = raw.get("num_gpus")
    if kind == "kubernetes" and isinstance(gpus, float) and not gpus.is_integer():
        problems.append(doc.problem((*where, "num_gpus"), f"Kubernetes schedules whole GPUs (nvidia.com/gpu); "
                                    f"{gpus:g} is a fraction: use a whole number, or ray for fractional GPUs"))
    memory = raw.get("memory")
    if memory is not None:
        try:
            memory_bytes(memory)
        except ValueError as exc:
            problems.append(doc.problem((*where, "memory"), str(exc)))
    return problems
