"""The stand-in Kubernetes API server's errors and its authentication and RBAC (tests/servers/kubernetes_api.py):

- [status] https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/: every error is a
  `Status` {kind, apiVersion, metadata, status: Failure, message, reason, details, code};
- [authn] https://kubernetes.io/docs/reference/access-authn-authz/authentication/: a bearer token the server does
  not know is 401 Unauthorized; a request without one is `system:anonymous`;
- [rbac] https://kubernetes.io/docs/reference/access-authn-authz/rbac/ and kube-apiserver's forbidden message:
  `<resource>.<group> "<name>" is forbidden: User "<u>" cannot <verb> resource "<r>" in API group "<g>" in the
  namespace "<ns>"` (403 Forbidden, details {name, group, kind}).
"""

from __future__ import annotations

import json
from typing import Any

from tests.servers.fakehttp import Refusal, Seen

KINDS = {"jobs": "Job", "secrets": "Secret", "configmaps": "ConfigMap", "pods": "Pod"}
GROUPS = {"jobs": "batch"}


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> Refusal:
    """[status] the body of every error."""
    return Refusal(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": message, "reason": reason, "details": details or {}, "code": code})


def qualified(resource: str) -> str:
    return f"{resource}.{GROUPS[resource]}" if resource in GROUPS else resource


def authorize(server: Any, seen: Seen, verb: str, resource: str, ns: str, name: str | None) -> None:
    """[authn] then [rbac]: `server.tokens` (token -> user), `server.grants` (user -> {"<verb> <res>"}, {"*"})."""
    header = seen.headers.get("authorization", "")
    user = "system:anonymous"
    if header:
        token = header.removeprefix("Bearer ").strip()
        if token not in server.tokens:
            raise status(401, "Unauthorized", "Unauthorized")
        user = server.tokens[token]
    grants = server.grants.get(user, set())
    if "*" in grants or f"{verb} {resource}" in grants:
        return
    base = resource.split("/")[0]
    group = GROUPS.get(base, "")
    what = f'{qualified(base)}{f" {json.dumps(name)}" if name else ""}'
    raise status(403, "Forbidden", f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource}" in '
                 f'API group "{group}" in the namespace "{ns}"', {"name": name or "", "group": group,
                                                                  "kind": base})
