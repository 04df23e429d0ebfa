"""The stand-in API server's controllers (tests/servers/kubernetes_api.py), run by one thread every 50 ms under the
server's lock, as kube-controller-manager's would:

- the Job controller ([ref] https://kubernetes.io/docs/concepts/workloads/controllers/job/): a suspended Job gets
  the Suspended condition and no pod; an unsuspended one gets startTime and one pod `<job>-<5 random>` with the
  template's labels and the controller's (job-name, controller-uid and their batch.kubernetes.io/ forms), owned by
  the Job; the pod's end gives SuccessCriteriaMet then Complete, or FailureTarget then Failed with reason
  BackoffLimitExceeded (backoffLimit 0); activeDeadlineSeconds past startTime deletes the active pods and fails the
  Job with reason DeadlineExceeded, "Job was active longer than specified deadline";
- the TTL-after-finished controller ([ref] concepts/workloads/controllers/ttlafterfinished/): a finished Job is
  deleted (its dependents with it) ttlSecondsAfterFinished after it finished;
- the garbage collector ([ref] concepts/architecture/garbage-collection/): an object whose owners are all gone
  is deleted.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
import time
import uuid
from typing import Any

from tests.servers.kubernetes_kubelet import Kubelet, now


class Controllers:
    """Mixed into KubernetesApiServer (its store, lock and kubelets)."""

    lock: Any
    objects: dict[tuple[str, str, str], dict[str, Any]]
    kubelets: dict[str, Kubelet]
    _clock: dict[str, float]
    _running: threading.Event

    def _remove(self, res: str, ns: str, name: str, policy: str) -> None:
        raise NotImplementedError

    def _version(self) -> str:
        raise NotImplementedError

    def _controllers(self) -> None:
        while self._running.is_set():
            with self.lock:
                for (res, ns, name), obj in list(self.objects.items()):
                    if (res, ns, name) not in self.objects:
                        continue
                    owners = obj["metadata"].get("ownerReferences") or []
                    if owners and not any(self._exists(o.get("uid")) for o in owners):
                        self._remove(res, ns, name, "Background")  # the garbage collector
                    elif res == "jobs":
                        self._job(ns, obj)
            time.sleep(0.05)

    def _exists(self, uid: str | None) -> bool:
        return any(o["metadata"]["uid"] == uid for o in self.objects.values())

    def _job(self, ns: str, job: dict[str, Any]) -> None:
        spec, state, uid = job["spec"], job["status"], job["metadata"]["uid"]
        if _ended(job):
            ttl = spec.get("ttlSecondsAfterFinished")
            if ttl is not None and time.monotonic() - self._clock[uid] >= ttl:
                self._remove("jobs", ns, job["metadata"]["name"], "Background")
            return
        if spec.get("suspend"):
            state["conditions"] = [{"type": "Suspended", "status": "True", "reason": "JobSuspended"}]
            return
        if "startTime" not in state:
            state.update(startTime=now(), active=1, conditions=[])
            self._clock[uid] = time.monotonic()
            self._pod(ns, job)
        pods = [p for (r, n, _), p in self.objects.items() if r == "pods" and n == ns and
                (p["metadata"].get("labels") or {}).get("controller-uid") == uid]
        phases = {p["status"].get("phase") for p in pods}
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and time.monotonic() - self._clock[uid] > deadline:
            for pod in pods:  # the Job controller deletes its active pods
                if pod["status"].get("phase") in ("Pending", "Running"):
                    self._remove("pods", ns, pod["metadata"]["name"], "Background")
            self._finish(job, "Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        elif "Succeeded" in phases:
            self._finish(job, "Complete", "CompletionsReached", "Reached expected number of succeeded pods")
        elif "Failed" in phases:
            self._finish(job, "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")

    def _finish(self, job: dict[str, Any], kind: str, reason: str, message: str) -> None:
        first = "SuccessCriteriaMet" if kind == "Complete" else "FailureTarget"
        job["status"].update(active=0, **({"succeeded": 1, "completionTime": now()} if kind == "Complete"
                                         else {"failed": 1}))
        job["status"]["conditions"] = [{"type": t, "status": "True", "reason": reason, "message": message,
                                        "lastTransitionTime": now()} for t in (first, kind)]
        self._clock[job["metadata"]["uid"]] = time.monotonic()

    def _pod(self, ns: str, job: dict[str, Any]) -> None:
        template = json.loads(json.dumps(job["spec"]["template"]))
        suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        name = f"{job['metadata']['name']}-{suffix}"
        pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"], "status": {"phase": "Pending"},
               "metadata": {**template.get("metadata", {}), "name": name, "namespace": ns, "uid": str(uuid.uuid4()),
                            "creationTimestamp": now(), "resourceVersion": self._version(),
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "controller": True,
                                                 "blockOwnerDeletion": True, "name": job["metadata"]["name"],
                                                 "uid": job["metadata"]["uid"]}]}}
        self.objects[("pods", ns, name)] = pod
        self.kubelets[pod["metadata"]["uid"]] = kubelet = Kubelet(self, pod)  # type: ignore[arg-type]  # mixed into KubernetesApiServer
        kubelet.start()


def _ended(job: dict[str, Any]) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in job["status"].get("conditions") or ())


