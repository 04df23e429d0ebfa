"""Following one step's Job to its end: its pod found by the `job-name` label, its log streamed (follow) as
`[step] line` lines from a reader thread, the Job's conditions polled (Complete, or Failed with its reason), a
pod that cannot start (its image cannot be pulled, its config is missing) failed at once with the kubelet's
reason, and heartbeat lines as a local step prints them."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ...errors import StepFailed
from ...support.processes import HEARTBEAT_S
from .base import Echo
from .kubernetes_client import Cluster
from .kubernetes_manifest import CONTAINER

POLL_S = 0.5
TAIL_LINES = 20
LOG_JOIN_S = 10.0  # after the Job ended: the rest of the log is on its way
# a container waiting for one of these will not start by itself: fail fast with the kubelet's words
CANNOT_START = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                          "CreateContainerConfigError", "CreateContainerError", "RunContainerError"})


@dataclass
class Outcome:
    """How the Job ended: its terminal condition and the step's container as last seen."""

    condition: str  # Complete | Failed
    reason: str
    message: str
    exit_code: int | None
    tail: list[str]
    duration: float


@dataclass
class _Log:
    """The pod's log, read by a thread while the main thread polls (and stays free for Ctrl-C)."""

    prefix: str
    echo: Echo
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    thread: threading.Thread | None = None

    def start(self, cluster: Cluster, pod: str) -> None:
        self.thread = threading.Thread(target=self._read, args=(cluster, pod), daemon=True)
        self.thread.start()

    def _read(self, cluster: Cluster, pod: str) -> None:
        try:
            # no read timeout: a step may be quiet for hours; the main thread's polls notice a gone server
            answer = cluster.core.read_namespaced_pod_log(pod, cluster.namespace, container=CONTAINER, follow=True,
                                                          _preload_content=False)
            pending = b""
            for chunk in answer.stream(amt=64 * 1024, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._emit(line)
            if pending:
                self._emit(pending)
        except Exception as exc:  # the log is for people: the Job's status says how the step ended
            self.echo(f"{self.prefix}(the log stream ended early: {type(exc).__name__})")

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        self.tail.append(line)
        self.echo(f"{self.prefix}{line}")

    def finish(self) -> list[str]:
        if self.thread is not None:
            self.thread.join(timeout=LOG_JOIN_S)
        return list(self.tail)


def follow(cluster: Cluster, name: str, progress: str, echo: Echo) -> Outcome:
    """Waits for the Job `name` to end, streaming its pod's log; StepFailed when its pod cannot start."""
    started = time.monotonic()
    beat = started + HEARTBEAT_S
    log = _Log(f"[{cluster.step}] ", echo)
    last_pod: dict[str, Any] | None = None
    said = ""
    while True:
        job = cluster.call("get jobs", cluster.batch.read_namespaced_job, name, cluster.namespace) or {}
        pods = cluster.call("list pods", cluster.core.list_namespaced_pod, cluster.namespace,
                            label_selector=f"job-name={name}") or {}
        pod = _newest(pods.get("items") or [])
        if pod is not None:
            last_pod = pod
            waiting = _waiting(pod)
            if waiting and waiting[0] in CANNOT_START:
                raise _cannot_start(cluster, pod, waiting)
            phase = (pod.get("status") or {}).get("phase", "Pending")
            if log.thread is None and phase in ("Running", "Succeeded", "Failed"):
                log.start(cluster, pod["metadata"]["name"])
            elif phase == "Pending" and waiting and waiting[0] != said:
                said = waiting[0]
                echo(f"{progress}: pod {pod['metadata']['name']} is waiting: {waiting[0]}")
        ended = _ended(job)
        if ended is not None:
            tail = log.finish()
            return Outcome(ended[0], ended[1], ended[2], _exit_code(last_pod), tail, time.monotonic() - started)
        now = time.monotonic()
        if now >= beat:
            echo(f"{progress}: still running ({now - started:.0f}s)")
            beat = now + HEARTBEAT_S
        time.sleep(POLL_S)


def _ended(job: dict[str, Any]) -> tuple[str, str, str] | None:
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return condition["type"], condition.get("reason", ""), condition.get("message", "")
    return None


def _newest(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(pods, key=lambda p: p.get("metadata", {}).get("creationTimestamp", ""), default=None)


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return next((s for s in statuses if s.get("name") == CONTAINER), {})


def _waiting(pod: dict[str, Any]) -> tuple[str, str] | None:
    waiting = (_container(pod).get("state") or {}).get("waiting")
    return (waiting.get("reason", ""), waiting.get("message", "")) if waiting else None


def _exit_code(pod: dict[str, Any] | None) -> int | None:
    """The step container's exit code (a negative signal when the kubelet names one)."""
    if pod is None:
        return None
    state = _container(pod).get("state") or {}
    terminated = state.get("terminated") or (_container(pod).get("lastState") or {}).get("terminated")
    if not terminated:
        return None
    if terminated.get("signal"):
        return -int(terminated["signal"])
    code = terminated.get("exitCode")
    return int(code) if code is not None else None


def _cannot_start(cluster: Cluster, pod: dict[str, Any], waiting: tuple[str, str]) -> StepFailed:
    reason, message = waiting
    image = next((c.get("image") for c in (pod.get("spec") or {}).get("containers") or ()
                  if c.get("name") == CONTAINER), "?")
    hint = ("check backend.image in ml.yaml (its name and tag) and that the cluster may pull it (imagePullSecrets "
            "of the service account)" if "Image" in reason else "check the step's Secret and ConfigMap")
    return StepFailed(cluster.step, None, f"step '{cluster.step}': its pod {pod['metadata']['name']} on "
                      f"{cluster.url} cannot start: {reason}{f': {message}' if message else ''} (image {image}); "
                      f"{hint}.")
