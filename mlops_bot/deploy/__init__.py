"""Deployment targets (command, webhook, gitops, mlflow_serve) and `deploy_all`, which runs them and records the
results.

Only `base` and `deployment` are imported here; a target's module (and httpx, ruamel.yaml) loads when a
target of its type runs.
"""

from __future__ import annotations

from .base import DeployFailed, DeployOptions, DeployRequest, DeployResult
from .deployment import deploy_all, raise_for_failures

__all__ = ["DeployFailed", "DeployOptions", "DeployRequest", "DeployResult", "deploy_all", "raise_for_failures"]
