"""A local stand-in for the Kubernetes API server, on 127.0.0.1, threaded, in memory: the routes a `backend:
kubernetes` step uses, each following the Kubernetes API reference (v1.33,
https://kubernetes.io/docs/reference/kubernetes-api/), and a 404 `Status` for anything else, as kube-apiserver
answers ("the server could not find the requested resource"). No real API server can run here: no container
runtime, and no package registry carries kube-apiserver (Debian has etcd-server only).

Routes (operationIds of the API's OpenAPI document; [ref] = the reference page):
- createBatchV1NamespacedJob, readBatchV1NamespacedJob, readBatchV1NamespacedJobStatus, patchBatchV1NamespacedJob,
  deleteBatchV1NamespacedJob, listBatchV1NamespacedJob: POST/GET /apis/batch/v1/namespaces/{ns}/jobs,
  GET/PATCH/DELETE .../jobs/{name}, GET .../jobs/{name}/status ([ref] workload-resources/job-v1). A batch/v1 Job's
  DELETE orphans its pods unless propagationPolicy says Background or Foreground (kube's jobStrategy default,
  "for back compatibility"; the server warns so in a Warning header).
- createCoreV1NamespacedSecret, readCoreV1NamespacedSecret, deleteCoreV1NamespacedSecret, listCoreV1NamespacedSecret
  ([ref] config-and-storage-resources/secret-v1: stringData is merged into data, base64, and never returned) and
  the same four for configmaps ([ref] config-and-storage-resources/config-map-v1).
- listCoreV1NamespacedPod (labelSelector `k=v[,k=v]`), readCoreV1NamespacedPod, deleteCoreV1NamespacedPod,
  readCoreV1NamespacedPodLog (GET .../pods/{name}/log: container, follow, tailLines; text/plain; 400 while the
  container waits to start) ([ref] workload-resources/pod-v1).
- Errors are `Status` objects (kubernetes_status.py): 401, 403 (RBAC's sentence), 404 NotFound, 405
  MethodNotAllowed, 409 AlreadyExists, 415 UnsupportedMediaType, 422 Invalid.

The controllers (Job, TTL-after-finished, garbage collector) are in kubernetes_controllers.py, the kubelet in
kubernetes_kubelet.py. Each created object is also checked against the OpenAPI schema (kubernetes-validate,
strict): a field the API would drop is a contract violation.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from tests.servers.fakehttp import Answer, FakeServer, Refusal, Seen
from tests.servers.kubernetes_controllers import Controllers
from tests.servers.kubernetes_kubelet import Kubelet, now
from tests.servers.kubernetes_status import GROUPS, KINDS, authorize, qualified, status
from tests.servers.kubernetes_stream import StreamingMixin, follow_log, tail_lines

TOKEN = "standin-kubernetes-token"
USER = "system:serviceaccount:ci:mlops-bot"
K8S_VERSION = "1.33"
_PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>batch)/v1)/namespaces/(?P<ns>[^/]+)/(?P<res>jobs|secrets|configmaps|"
                   r"pods)(?:/(?P<name>[^/]+)(?P<sub>/status|/log)?)?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
VERBS = {("POST", False): "create", ("GET", False): "list", ("GET", True): "get", ("PATCH", True): "patch",
         ("DELETE", True): "delete"}
MERGE = ("application/merge-patch+json", "application/strategic-merge-patch+json")


class KubernetesApiServer(Controllers, StreamingMixin, FakeServer):
    """One cluster. `tokens`: bearer token -> user; `grants`: user -> {"<verb> <resource>"} or {"*"} (RBAC);
    `image_failures`: image -> the kubelet's pull error; `image_env`: what every image sets (PATH to this
    Python); `started`: each container started (argv, env, cwd); `history`: every object created."""

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.workdir = workdir
        self.tokens = {TOKEN: USER}
        self.grants: dict[str, set[str]] = {USER: {"*"}}
        self.namespaces = {"default", "ml"}
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.image_failures: dict[str, str] = {}
        bin_dir = str(Path(sys.executable).parent)
        self.image_env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir)}
        self.kubelets: dict[str, Kubelet] = {}
        self.started: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str, dict[str, Any]]] = []  # (resource, name, DeleteOptions)
        self.history: list[dict[str, Any]] = []  # every object created, as stored
        self._versions = itertools.count(1)
        self._clock: dict[str, float] = {}  # Job uid -> when it started / finished (monotonic)
        self._running = threading.Event()

    # the store
    def _version(self) -> str:
        return str(next(self._versions))

    def get_object(self, resource: str, ns: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            return self.objects.get((resource, ns, name))

    def names(self, resource: str) -> list[str]:
        with self.lock:
            return sorted(name for (r, _, name) in self.objects if r == resource)

    # the request pipeline
    def handle(self, seen: Seen) -> Answer:
        found = _PATH.match(seen.path)
        if not found:
            raise status(404, "NotFound", "the server could not find the requested resource")
        res, ns, name, sub = found["res"], found["ns"], found["name"], found["sub"] or ""
        if (res == "jobs") != bool(found["group"]) or (sub == "/log" and res != "pods") or \
                (sub == "/status" and res != "jobs"):
            raise status(404, "NotFound", "the server could not find the requested resource")
        verb = VERBS.get((seen.method, name is not None))
        if verb is None or (sub and verb != "get"):
            raise status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        group = "BatchV1" if res == "jobs" else "CoreV1"
        seen.operation = f"{'read' if verb == 'get' else verb}{group}Namespaced{KINDS[res]}{sub[1:].title()}"
        authorize(self, seen, verb, res + sub, ns, name)
        answer = self.take_fault(seen.operation)
        if answer is not None:
            return answer
        if ns not in self.namespaces:
            raise status(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
        if sub == "/log":
            return self._log(seen, ns, name)
        with self.lock:
            handler: Any = getattr(self, f"_{verb}")
            done: Answer = handler(seen, res, ns, name)
        return done

    def _missing(self, res: str, name: str) -> Refusal:
        return status(404, "NotFound", f'{qualified(res)} "{name}" not found',
                      {"name": name, "group": GROUPS.get(res, ""), "kind": res})

    def _stored(self, res: str, ns: str, name: str) -> dict[str, Any]:
        obj = self.objects.get((res, ns, name))
        if obj is None:
            raise self._missing(res, name)
        return obj

    # create, read, list, patch, delete
    def _create(self, seen: Seen, res: str, ns: str, _name: None) -> Answer:
        body = seen.body if isinstance(seen.body, dict) else {}
        self._check_schema(seen, body)
        meta = body.get("metadata") or {}
        name = str(meta.get("name") or "")
        if body.get("kind") not in (None, KINDS[res]) or not name or not _SUBDOMAIN.match(name) or len(name) > 253 \
                or (res == "jobs" and len(name) > 63):
            limit = " of at most 63 characters" if res == "jobs" else ""
            raise status(422, "Invalid", f'{KINDS[res]} "{name}" is invalid: metadata.name: Invalid value: '
                         f'"{name}": a lowercase RFC 1123 subdomain{limit} is required',
                         {"name": name, "group": GROUPS.get(res, ""), "kind": KINDS[res]})
        if (res, ns, name) in self.objects:
            raise status(409, "AlreadyExists", f'{qualified(res)} "{name}" already exists',
                         {"name": name, "group": GROUPS.get(res, ""), "kind": res})
        obj = json.loads(json.dumps(body))
        obj.update(apiVersion="batch/v1" if res == "jobs" else "v1", kind=KINDS[res])
        obj["metadata"] = {**meta, "namespace": ns, "uid": str(uuid.uuid4()), "creationTimestamp": now(),
                           "resourceVersion": self._version()}
        if res == "secrets":
            data = dict(obj.get("data") or {})
            data.update({k: base64.b64encode(str(v).encode()).decode() for k, v in
                         (obj.pop("stringData", None) or {}).items()})
            obj["data"] = data
        if res == "jobs":
            self._default_job(obj)
        self.objects[(res, ns, name)] = obj
        self.history.append(obj)
        return Answer(201, obj)

    def _default_job(self, job: dict[str, Any]) -> None:
        spec, uid, name = job["spec"], job["metadata"]["uid"], job["metadata"]["name"]
        problems = [] if spec.get("template", {}).get("spec", {}).get("restartPolicy") in ("Never", "OnFailure") \
            else ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"']
        if not spec.get("template", {}).get("spec", {}).get("containers"):
            problems.append("spec.template.spec.containers: Required value")
        if problems:
            raise status(422, "Invalid", f'Job.batch "{name}" is invalid: {"; ".join(problems)}',
                         {"name": name, "group": "batch", "kind": "Job"})
        controller = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                      "controller-uid": uid, "job-name": name}
        template = spec["template"].setdefault("metadata", {})
        template["labels"] = {**(template.get("labels") or {}), **controller}
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", 1)
        spec.setdefault("suspend", False)
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        spec["template"]["spec"].setdefault("terminationGracePeriodSeconds", 30)
        job["metadata"]["generation"] = 1
        job["status"] = {}

    def _get(self, seen: Seen, res: str, ns: str, name: str) -> Answer:
        return Answer(200, self._stored(res, ns, name))

    def _list(self, seen: Seen, res: str, ns: str, _name: None) -> Answer:
        wanted = dict(term.split("=", 1) for term in (seen.query.get("labelSelector") or [""])[0].split(",") if term)
        items = [obj for (r, n, _), obj in self.objects.items() if r == res and n == ns and
                 all((obj["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]
        return Answer(200, {"kind": f"{KINDS[res]}List", "apiVersion": "batch/v1" if res == "jobs" else "v1",
                            "metadata": {"resourceVersion": self._version()}, "items": items})

    def _patch(self, seen: Seen, res: str, ns: str, name: str) -> Answer:
        obj = self._stored(res, ns, name)
        kind = seen.headers.get("content-type", "").split(";")[0].strip()
        if kind not in MERGE:
            self.violation(f"PATCH {seen.path}: {kind or 'no content type'}; the stand-in applies merge patches only")
            raise status(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted "
                         f"media types include: {', '.join(MERGE)}")
        body = seen.body if isinstance(seen.body, dict) else {}
        changed = set(body.get("spec") or {}) - {"suspend", "activeDeadlineSeconds", "parallelism"}
        if res == "jobs" and changed:
            raise status(422, "Invalid", f'Job.batch "{name}" is invalid: spec.{sorted(changed)[0]}: Invalid value: '
                         "field is immutable", {"name": name, "group": "batch", "kind": "Job"})
        _merge(obj, body)
        obj["metadata"]["resourceVersion"] = self._version()
        return Answer(200, obj)

    def _delete(self, seen: Seen, res: str, ns: str, name: str) -> Answer:
        obj = self._stored(res, ns, name)
        options = seen.body if isinstance(seen.body, dict) else {}
        policy = (seen.query.get("propagationPolicy") or [options.get("propagationPolicy") or ""])[0]
        self.deleted.append((res, name, dict(options)))
        headers = {}
        if res == "jobs" and not policy:  # kube's jobStrategy: batch/v1 orphans by default
            policy = "Orphan"
            headers["Warning"] = ('299 - "child pods are preserved by default when jobs are deleted; set '
                                  'propagationPolicy=Background to remove them or set propagationPolicy=Orphan to '
                                  'suppress this warning"')
        self._remove(res, ns, name, policy or "Background")
        return Answer(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                            "details": {"name": name, "group": GROUPS.get(res, ""), "kind": res,
                                        "uid": obj["metadata"]["uid"]}}, headers)

    def _remove(self, res: str, ns: str, name: str, policy: str) -> None:
        obj = self.objects.pop((res, ns, name))
        uid = obj["metadata"]["uid"]
        if res == "pods" and uid in self.kubelets:
            threading.Thread(target=self.kubelets[uid].stop, daemon=True).start()
        for key, other in list(self.objects.items()):
            owners = other["metadata"].get("ownerReferences") or []
            if any(o.get("uid") == uid for o in owners):
                if policy == "Orphan":
                    other["metadata"]["ownerReferences"] = [o for o in owners if o.get("uid") != uid]
                elif key in self.objects:
                    self._remove(*key, policy="Background")

    # the pod's log
    def _log(self, seen: Seen, ns: str, name: str) -> Answer:
        with self.lock:
            pod = self._stored("pods", ns, name)
            kubelet = self.kubelets[pod["metadata"]["uid"]]
        container = (seen.query.get("container") or [kubelet.container["name"]])[0]
        if container != kubelet.container["name"]:
            raise status(400, "BadRequest", f"container {container} is not valid for pod {name}")
        waiting = kubelet.waiting()
        if kubelet.proc is None and not kubelet.finished.is_set() and waiting:
            raise status(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: '
                         f"{'trying and failing to pull image' if 'Image' in waiting[0] else waiting[0]}")
        tail: str | None = (seen.query.get("tailLines") or [""])[0] or None
        if (seen.query.get("follow") or ["false"])[0] == "true":
            return self.stream(follow_log(kubelet, tail), {"Content-Type": "text/plain"})
        return Answer(200, tail_lines(kubelet.log.read_bytes(), tail), {"Content-Type": "text/plain"})

    def _check_schema(self, seen: Seen, body: dict[str, Any]) -> None:
        import kubernetes_validate  # type: ignore[import-untyped]

        try:
            kubernetes_validate.validate(body, K8S_VERSION, strict=True)
        except Exception as exc:  # the API would drop or refuse a field: the client's bug
            self.violation(f"{seen.method} {seen.path}: not a valid {body.get('kind')}: {exc}")

    # lifecycle
    def start(self) -> KubernetesApiServer:
        super().start()
        self._running.set()
        threading.Thread(target=self._controllers, daemon=True).start()
        return self

    def stop(self) -> None:
        self._running.clear()
        super().stop()
        self.close_connections()
        for kubelet in list(self.kubelets.values()):
            kubelet.stop()


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386 JSON merge patch."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def start(workdir: Path) -> KubernetesApiServer:
    return KubernetesApiServer(workdir).start()
