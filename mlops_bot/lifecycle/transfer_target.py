"""The registry a version is copied to (`promote --to-registry URI`): opened with credentials of its own.

The target never sees the source's credentials. Its environment is the job's without any `MLFLOW_TRACKING_*`
variable, plus every `MLOPS_BOT_TARGET_TRACKING_<X>` renamed to `MLFLOW_TRACKING_<X>`:

- `MLOPS_BOT_TARGET_TRACKING_TOKEN` (a bearer token), or `MLOPS_BOT_TARGET_TRACKING_TOKEN_COMMAND`;
- `MLOPS_BOT_TARGET_TRACKING_USERNAME` and `MLOPS_BOT_TARGET_TRACKING_PASSWORD` (basic auth);
- `MLOPS_BOT_TARGET_TRACKING_INSECURE_TLS`, `MLOPS_BOT_TARGET_TRACKING_SERVER_CERT_PATH` (TLS).

The variables the source reads (`MLFLOW_TRACKING_TOKEN`, ...) keep serving the project's own tracking server.
A refused credential on the target names the target's variables, not MLflow's.

The target must be another tracking server: `local` (the embedded store) and the source's own server (the same
URL, or any URL at which the source's run is found: the same backend store) are refused before anything is
written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import AuthError, InvalidParameter, NotFound, UsageError
from ..registry import open_registry
from ..registry.base import Registry, Run
from ..support.urls import redact

MLFLOW_PREFIX = "MLFLOW_TRACKING_"
TARGET_PREFIX = "MLOPS_BOT_TARGET_TRACKING_"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def target_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment the target registry reads its credentials from (see the module docstring)."""
    kept = {k: v for k, v in env.items() if not k.startswith(MLFLOW_PREFIX)}
    renamed = {MLFLOW_PREFIX + k[len(TARGET_PREFIX):]: v for k, v in env.items()
               if k.startswith(TARGET_PREFIX) and len(k) > len(TARGET_PREFIX)}
    return {**kept, **renamed}


def server_key(uri: str) -> str:
    """A tracking URI as compared for sameness: no credentials or query, scheme and host lower case, the default
    port and a trailing '/' dropped, loopback names as one."""
    bare = redact(uri.strip()).rstrip("/")
    try:
        parts = urlsplit(bare)
        port = parts.port
    except ValueError:
        return bare.lower()
    host = (parts.hostname or "").lower()
    host = "localhost" if host in _LOOPBACK else host
    scheme = parts.scheme.lower()
    shown_port = "" if port is None or port == _DEFAULT_PORTS.get(scheme) else f":{port}"
    return f"{scheme}://{host}{shown_port}{parts.path.rstrip('/')}"


def open_target(uri: str, root: Path, env: Mapping[str, str], source_uri: str) -> Registry:
    """The target registry at `uri`; UsageError for `local`, a URI the bot cannot open, or the source's own URL."""
    given = uri.strip()
    if given.lower() in ("", "local"):
        raise UsageError("--to-registry: 'local' is this machine's embedded store, not another registry; give the "
                         "http(s):// URL of the tracking server to copy the version to.")
    if server_key(given) == server_key(source_uri or "local"):
        raise UsageError(f"--to-registry: {redact(given)} is this project's own tracking server (tracking.uri); "
                         "give another server's URL, e.g. the production workspace's.")
    try:
        return open_registry(given, root, target_env(env))
    except UsageError as exc:
        raise UsageError(f"--to-registry: {exc}") from None


def refuse_same_store(target: Registry, source_run: Run, target_uri: str) -> None:
    """UsageError when the target holds the source's run itself: another URL of the same server (run ids are
    unique per store). Also the first request to the target: a refused credential fails here, before any write."""
    try:
        found = target.get_run(source_run.run_id)
    except (NotFound, InvalidParameter):
        return
    if found.experiment_id == source_run.experiment_id and found.start_time == source_run.start_time:
        raise UsageError(f"--to-registry: {redact(target_uri)} serves this project's own tracking store (run "
                         f"{source_run.run_id} is there already); give another server's URL.")


def for_target(exc: AuthError) -> AuthError:
    """A refusal by the target, its advice naming the variables the target's credentials come from."""
    detail = exc.detail.replace(MLFLOW_PREFIX, TARGET_PREFIX)
    return AuthError(exc.service, exc.status, exc.url, detail)
