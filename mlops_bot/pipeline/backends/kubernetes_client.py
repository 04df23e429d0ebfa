"""The Kubernetes API as the backend uses it: where the API server is and whose credentials go to it, and one call
with bounded retries whose failures become StepFailed messages naming the server (redacted), the namespace and
the permission that was missing.

Where: `backend.address` (ml.yaml) with the credentials of the kubeconfig context whose cluster has that server,
or none: ml.yaml comes from a pull request and may name any host, so a token goes only where the kubeconfig sends
it. Without an address: the kubeconfig's current context (KUBECONFIG or ~/.kube/config), else the pod's service
account (in-cluster). The namespace: `backend.namespace`, else the context's, else the pod's, else `default`.
The official client (`kubernetes`, the optional extra) is imported here only.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config.backends import StepBackend
from ...errors import StepFailed
from ...support.urls import redact

ATTEMPTS = 4  # per call: a restarting API server or a dropped connection is retried, a gone one is reported
BACKOFF_S = (0.5, 1.0, 2.0)
TIMEOUT_S = (5.0, 30.0)  # connect, read
RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
RBAC = ("create on jobs.batch, secrets and configmaps; get and patch on jobs.batch; list on pods; get on pods/log; "
        "delete on jobs.batch, secrets and configmaps")


class Refused(StepFailed):
    """The API server answered the call with an error: nothing was changed by it."""


@dataclass
class Cluster:
    """The API clients of one step's run, and how its errors are told."""

    step: str
    url: str  # redacted
    namespace: str
    credentials: str  # where the credentials came from, for the 401/403 messages
    core: Any  # kubernetes.client.CoreV1Api
    batch: Any  # kubernetes.client.BatchV1Api

    def call(self, action: str, method: Callable[..., Any], *args: Any, missing_ok: bool = False,
             attempts: int = ATTEMPTS, **kwargs: Any) -> dict[str, Any] | None:
        """`method(*args)` as JSON (None: 404 with missing_ok). `action` says what it does ("create jobs"),
        for the error messages. Connection failures and 429/5xx are retried `attempts` times."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                answer = method(*args, _preload_content=False, _request_timeout=TIMEOUT_S, **kwargs)
                data = answer.data
                return json.loads(data) if data else {}
            except ApiException as exc:
                if exc.status == 404 and missing_ok:
                    return None
                if exc.status in RETRIED_STATUS and not last:
                    time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
                    continue
                raise self.refused(action, exc.status or 0, _message(exc.body) or str(exc.reason)) from None
            except (HTTPError, OSError) as exc:
                if not last:
                    time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
                    continue
                raise StepFailed(self.step, None, f"step '{self.step}': the Kubernetes API server at {self.url} "
                                 f"cannot be reached ({type(exc).__name__}) after {attempts} attempts, trying to "
                                 f"{action} in namespace {self.namespace}; check backend.address in ml.yaml (or "
                                 "the kubeconfig's server), the network and the cluster.") from None
        raise AssertionError("unreachable")

    def refused(self, action: str, status: int, message: str) -> Refused:
        where = f"the Kubernetes API server at {self.url}"
        if status == 401:
            hint = (f"{where} did not accept the credentials ({self.credentials}): 401 Unauthorized; renew the "
                    "token or fix the kubeconfig context")
        elif status == 403:
            hint = (f"{where} refused to let us {action} in namespace {self.namespace}: 403 Forbidden "
                    f"({message}); bind the bot's identity ({self.credentials}) to a Role granting {RBAC}")
        elif status == 404 and "namespace" in message.lower():
            hint = f"{where}: {message}; create the namespace or set backend.namespace in ml.yaml"
        else:
            hint = f"{where} answered {status} to '{action}' in namespace {self.namespace}: {message}"
        return Refused(self.step, None, f"step '{self.step}': {hint}.")


def connect(backend: StepBackend, step: str, environ: Mapping[str, str]) -> Cluster:
    """The API clients for `backend` (see the module docstring)."""
    from kubernetes import client, config

    settings = client.Configuration()
    namespace, credentials = None, "no credentials"
    files = [f for f in environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep) if f]
    contexts = _contexts([Path(f).expanduser() for f in files])
    if backend.address:
        wanted = _origin(backend.address)
        match = next((c for c in contexts if _origin(c["server"]) == wanted), None)
        if match is not None:
            _load(step, match, settings)
            namespace, credentials = match["namespace"], f"kubeconfig context {match['name']}"
        settings.host = backend.address.rstrip("/")
    elif contexts:
        current = next((c for c in contexts if c["current"]), contexts[0])
        _load(step, current, settings)
        namespace, credentials = current["namespace"], f"kubeconfig context {current['name']}"
    else:
        try:
            config.load_incluster_config(client_configuration=settings)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            raise StepFailed(step, None, f"step '{step}' runs on Kubernetes but there is no cluster to run it on: "
                             "no backend.address in ml.yaml, no kubeconfig (KUBECONFIG or ~/.kube/config) and not "
                             "inside a pod; set one of them.") from None
        namespace = IN_CLUSTER_NAMESPACE.read_text().strip() if IN_CLUSTER_NAMESPACE.is_file() else None
        credentials = "the pod's service account"
    settings.retries = 0  # Cluster.call retries, bounded, and says so
    api = client.ApiClient(settings)
    return Cluster(step, redact(settings.host), backend.namespace or namespace or "default", credentials,
                   client.CoreV1Api(api), client.BatchV1Api(api))


def _load(step: str, context: dict[str, Any], settings: Any) -> None:
    from kubernetes import config

    try:
        config.load_kube_config(config_file=context["file"], context=context["name"],  # type: ignore[no-untyped-call]
                                client_configuration=settings)
    except (config.ConfigException, OSError, ValueError) as exc:
        raise StepFailed(step, None, f"step '{step}': the kubeconfig {context['file']} (context {context['name']}) "
                         f"cannot be used: {exc}; fix it or point KUBECONFIG at another.") from None


def _contexts(files: list[Path]) -> list[dict[str, Any]]:
    """Every context of the kubeconfig files: name, file, server, namespace, current (the first file's
    current-context wins, as kubectl merges them)."""
    import yaml

    found: list[dict[str, Any]] = []
    current: str | None = None
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text()) if path.is_file() else None
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(doc, dict):
            continue
        current = current or doc.get("current-context")
        servers = {c.get("name"): (c.get("cluster") or {}).get("server", "") for c in doc.get("clusters") or ()
                   if isinstance(c, dict)}
        for entry in doc.get("contexts") or ():
            context = (entry.get("context") or {}) if isinstance(entry, dict) else {}
            if isinstance(entry, dict) and entry.get("name") and servers.get(context.get("cluster")):
                found.append({"name": entry["name"], "file": str(path), "server": servers[context["cluster"]],
                              "namespace": context.get("namespace")})
    for context in found:
        context["current"] = context["name"] == current
    return found


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme, 0)
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}{parts.path.rstrip('/')}"


def _message(body: Any) -> str:
    """The `message` of the Status the API server answers with (or the body's start)."""
    try:
        doc = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return str(body or "")[:300]
    return str(doc.get("message", "")) if isinstance(doc, dict) else ""
