"""The registry layer: `open_registry` picks the implementation for a tracking URI.

httpx is imported only when an http(s) URI is opened, so importing this package stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import NotFound, UsageError
from ..support.state import state_path
from ..support.urls import redact
from .base import ModelVersion, Registry


def open_registry(tracking_uri: str, root: Path, env: Mapping[str, str] | None = None,
                  registry_uri: str = "") -> Registry:
    """`local` (or empty): the embedded store in the state directory of `root`; http(s)://: an MLflow server.

    `env` supplies the MLFLOW_TRACKING_* credentials (os.environ when None). `registry_uri` 'databricks-uc':
    the registry half in Unity Catalog on the same workspace (registry/mlflow/unity.py).
    """
    uri = tracking_uri.strip()
    if registry_uri.strip():
        return _unity_catalog(uri, registry_uri.strip(), os.environ if env is None else env)
    if uri in ("", "local"):
        from .local.store import LocalRegistry

        return LocalRegistry(state_path(root))
    if uri.lower().startswith(("http://", "https://")):
        from .mlflow.client import MlflowRegistry

        return MlflowRegistry(uri, os.environ if env is None else env)
    raise UsageError(f"tracking URI {redact(tracking_uri)!r} is not supported; {_instead(uri)}")


def _unity_catalog(uri: str, registry_uri: str, env: Mapping[str, str]) -> Registry:
    if registry_uri.lower() != "databricks-uc":
        raise UsageError(f"registry URI {redact(registry_uri)!r} is not supported; use 'databricks-uc' (Unity Catalog) "
                         "or leave it out for the tracking server's own registry.")
    if not uri.lower().startswith(("http://", "https://")):
        raise UsageError(f"registry URI 'databricks-uc' needs the Databricks workspace as the tracking URI, not "
                         f"{redact(uri)!r}: use https://<workspace>.cloud.databricks.com with MLFLOW_TRACKING_TOKEN.")
    from .mlflow.unity import UnityRegistry

    return UnityRegistry(uri, env)


def _instead(uri: str) -> str:
    """What to use instead of a tracking URI the bot does not speak."""
    scheme = uri.partition(":")[0].lower()
    if scheme == "databricks":
        return "use the workspace URL, https://<workspace>.cloud.databricks.com, with MLFLOW_TRACKING_TOKEN."
    if scheme == "azureml":
        return "use the same URI with https:// instead of azureml://, with MLFLOW_TRACKING_TOKEN."
    if scheme in ("sqlite", "file", "postgresql", "mysql", "mssql") or "://" not in uri:
        return ("that is a backend store, which mlops-bot reads only through a tracking server: serve it with "
                "`mlflow server --backend-store-uri <it>` and use that server's http(s):// URL, or use 'local' "
                "for the embedded store.")
    return "use 'local' for the embedded store or an http(s):// URL of an MLflow tracking server."


def alias_holder(registry: Registry, model: str, alias: str) -> ModelVersion | None:
    """The version behind `alias`, or None when the alias is not set or the model was never registered."""
    try:
        return registry.get_version_by_alias(model, alias)
    except NotFound:
        return None


__all__ = ["Registry", "alias_holder", "open_registry"]
