"""The stand-in API server's kubelet (tests/servers/kubernetes_api.py): runs a pod's one container as a local
subprocess and reports it in the pod's status as a kubelet would. Sources:

- [pod-lifecycle] https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/: phases Pending, Running,
  Succeeded, Failed; container states waiting (reason, message), running (startedAt), terminated (exitCode,
  reason, startedAt, finishedAt); "Pod termination": SIGTERM, then SIGKILL after terminationGracePeriodSeconds.
- [images] https://kubernetes.io/docs/concepts/containers/images/#imagepullbackoff: a pull that fails leaves the
  container waiting with ErrImagePull, then ImagePullBackOff.
- [env] https://kubernetes.io/docs/tasks/inject-data-application/define-interdependent-environment-variables/ and
  the Container reference (env, envFrom, command, args): `$(VAR)` expands to an earlier variable, `$$` is `$`, an
  unknown reference stays as written; envFrom comes first, env overrides it; a missing Secret or key leaves the
  container waiting with CreateContainerConfigError.
- [volumes] https://kubernetes.io/docs/concepts/storage/volumes/: configMap and secret volumes hold one file per
  key (`items` picks some; `defaultMode`), emptyDir an empty directory; a volume whose ConfigMap does not exist
  yet keeps the pod ContainerCreating.

The image is not pulled: the container runs on this machine with `image_env` (PATH to this Python, which has mlflow,
as an image with Python would), and its volumes are temp dirs: a command argument or workingDir under a mountPath is
rewritten to the temp dir (the stand-in has no mount namespace). Said here because a real kubelet does not do that.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.servers.kubernetes_api import KubernetesApiServer

GRACE_CAP_S = 3.0  # a pod's terminationGracePeriodSeconds, capped so a test never waits 30 s
_REFERENCE = re.compile(r"\$\$|\$\(([^)]*)\)")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def expand(text: str, env: dict[str, str]) -> str:
    """[env] `$(VAR)` from `env`, `$$` -> `$`, an unknown `$(VAR)` left as it is."""
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REFERENCE.sub(one, text)


class NotReady(Exception):
    """The container cannot start yet: (reason, message) for its waiting state."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


class Kubelet:
    """Runs one pod (`pod` is the server's stored object, changed under the server's lock)."""

    def __init__(self, server: KubernetesApiServer, pod: dict[str, Any]) -> None:
        self.server, self.pod = server, pod
        self.namespace = pod["metadata"]["namespace"]
        self.container = pod["spec"]["containers"][0]
        self.log = Path(tempfile.mkstemp(prefix="pod-", suffix=".log", dir=server.workdir)[1])
        self.proc: subprocess.Popen[bytes] | None = None
        self.deleted = threading.Event()
        self.finished = threading.Event()
        self.started_at = ""

    def start(self) -> None:
        threading.Thread(target=self._live, daemon=True).start()

    # the pod's status, as the kubelet reports it
    def _status(self, phase: str, state: dict[str, Any], ready: bool = False) -> None:
        with self.server.lock:
            self.pod["status"] = {
                "phase": phase, "startTime": self.pod["status"].get("startTime") or now(),
                "conditions": [{"type": "PodScheduled", "status": "True"},
                               {"type": "Ready", "status": "True" if ready else "False"}],
                "containerStatuses": [{"name": self.container["name"], "image": self.container["image"],
                                       "ready": ready, "restartCount": 0, "started": "running" in state,
                                       "state": state}]}

    def waiting(self) -> tuple[str, str] | None:
        with self.server.lock:
            statuses = self.pod["status"].get("containerStatuses") or [{}]
            waiting = statuses[0].get("state", {}).get("waiting")
            return (waiting["reason"], waiting.get("message", "")) if waiting else None

    def _live(self) -> None:
        image = self.container["image"]
        self._status("Pending", {"waiting": {"reason": "ContainerCreating"}})
        pulls = 0
        while not self.deleted.is_set():
            failure = self.server.image_failures.get(image)
            try:
                if failure is not None:  # [images] ErrImagePull, then ImagePullBackOff
                    pulls += 1
                    raise NotReady("ErrImagePull", failure) if pulls == 1 else \
                        NotReady("ImagePullBackOff", f'Back-off pulling image "{image}"')
                argv, env, cwd = self._prepare()
            except NotReady as wait:
                self._status("Pending", {"waiting": {"reason": wait.reason, "message": wait.message}})
                self.deleted.wait(0.2)
                continue
            self._run(argv, env, cwd)
            return
        self.finished.set()

    def _run(self, argv: list[str], env: dict[str, str], cwd: str) -> None:
        self.started_at = now()
        try:
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:  # [pod-lifecycle] a command that cannot start: StartError, 128
            self.log.write_text(f"exec: {argv[0]!r}: {exc.strerror}\n")
            self._end(128, "StartError")
            return
        self.server.started.append({"pod": self.pod["metadata"]["name"], "argv": argv, "env": env, "cwd": cwd})
        self._status("Running", {"running": {"startedAt": self.started_at}}, ready=True)
        code = self.proc.wait()
        self._end(128 - code if code < 0 else code, "Completed" if code == 0 else "Error")

    def _end(self, code: int, reason: str) -> None:
        self._status("Succeeded" if code == 0 else "Failed",
                     {"terminated": {"exitCode": code, "reason": reason, "startedAt": self.started_at or now(),
                                     "finishedAt": now()}})
        self.finished.set()

    def stop(self) -> None:
        """[pod-lifecycle] the pod is deleted: SIGTERM, then SIGKILL after the grace period."""
        self.deleted.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        grace = min(float(self.pod["spec"].get("terminationGracePeriodSeconds", 30)), GRACE_CAP_S)
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    # what the container gets
    def _prepare(self) -> tuple[list[str], dict[str, str], str]:
        mounts = self._volumes()
        env = self._env()
        argv = [expand(a, env) for a in [*self.container.get("command", []), *self.container.get("args", [])]]
        if not argv:
            raise NotReady("CreateContainerError", "the stand-in has no image entrypoint: set command")
        argv = [_remap(a, mounts) for a in argv]
        workdir = self.container.get("workingDir")
        cwd = _remap(workdir, mounts) if workdir else str(self.server.workdir)
        if workdir and cwd == workdir:  # a directory of the image: made for it
            cwd = tempfile.mkdtemp(prefix="workingdir-", dir=self.server.workdir)
        return argv, env, cwd

    def _volumes(self) -> dict[str, str]:
        """mountPath -> the temp dir standing for it (files written once, before the container starts)."""
        root = Path(self.server.workdir) / self.pod["metadata"]["uid"]
        volumes = {v["name"]: v for v in self.pod["spec"].get("volumes", [])}
        mounts: dict[str, str] = {}
        for mount in self.container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            target = root / mount["name"]
            if not target.exists():
                self._fill(volume, target)
            mounts[mount["mountPath"].rstrip("/")] = str(target)
        return mounts

    def _fill(self, volume: dict[str, Any], target: Path) -> None:
        if "emptyDir" in volume:
            target.mkdir(parents=True)
            return
        kind, source = ("configmaps", volume["configMap"]) if "configMap" in volume else ("secrets", volume["secret"])
        name = source.get("name") or source.get("secretName")
        found = self.server.get_object(kind, self.namespace, name)
        if found is None:
            raise NotReady("ContainerCreating", f'MountVolume.SetUp failed for volume "{volume["name"]}": '
                           f'{kind[:-1]} "{name}" not found')
        data = _values(found)
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        staging = target.with_name(target.name + ".tmp")
        staging.mkdir(parents=True, exist_ok=True)
        for item in items:
            path = staging / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data[item["key"]])
            path.chmod(item.get("mode", source.get("defaultMode", 0o644)))
        staging.rename(target)

    def _env(self) -> dict[str, str]:
        env = dict(self.server.image_env)
        for source in self.container.get("envFrom", []):
            kind, ref = ("secrets", source["secretRef"]) if "secretRef" in source else \
                ("configmaps", source["configMapRef"])
            found = self._ref(kind, ref["name"], None, bool(ref.get("optional")))
            env.update({source.get("prefix", "") + k: v.decode() for k, v in _values(found or {}).items()})
        for var in self.container.get("env", []):
            if "valueFrom" not in var:
                env[var["name"]] = expand(var.get("value", ""), env)
                continue
            ref = var["valueFrom"].get("secretKeyRef") or var["valueFrom"].get("configMapKeyRef")
            kind = "secrets" if "secretKeyRef" in var["valueFrom"] else "configmaps"
            found = self._ref(kind, ref["name"], ref["key"], bool(ref.get("optional")))
            if found is not None:
                env[var["name"]] = _values(found)[ref["key"]].decode()
        return env

    def _ref(self, kind: str, name: str, key: str | None, optional: bool) -> dict[str, Any] | None:
        found = self.server.get_object(kind, self.namespace, name)
        label = "Secret" if kind == "secrets" else "ConfigMap"
        if found is None and not optional:
            raise NotReady("CreateContainerConfigError", f'{kind[:-1]} "{name}" not found')
        if found is not None and key is not None and key not in _values(found):
            if optional:
                return None
            raise NotReady("CreateContainerConfigError", f"couldn't find key {key} in {label} {self.namespace}/{name}")
        return found


def _values(obj: dict[str, Any]) -> dict[str, bytes]:
    if obj.get("kind") == "Secret":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    return {k: v.encode() for k, v in (obj.get("data") or {}).items()}


def _remap(value: str, mounts: dict[str, str]) -> str:
    for path, host in sorted(mounts.items(), key=lambda item: -len(item[0])):
        if value == path or value.startswith(path + "/"):
            return host + value[len(path):]
    return value
