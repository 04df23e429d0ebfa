"""How the bot moves traffic on a platform: one driver per target type that can split it. The rollout loop
(engine.py) is the same for all; a driver only applies what the loop decided, idempotently (applying the same
split twice changes nothing), so a resumed rollout can apply its current step again safely."""

from __future__ import annotations

import importlib
from typing import Protocol

from ...config.model import DeployTarget
from ..base import DeployRequest, DeploySession


class TrafficSplit(Protocol):
    def stable(self) -> str | None:
        """The version that serves all traffic before the rollout (None: nothing serves yet)."""
        ...

    def prepare(self) -> dict[str, str]:
        """Makes the new version ready to take traffic without giving it any (e.g. starts and verifies it);
        returns evidence tags. Raises DeployRefused when it is not fit to serve."""
        ...

    def split(self, percent: int) -> str:
        """Sends `percent` of requests to the new version and the rest to the stable one; says what it did."""
        ...

    def shadow(self, share: int) -> str:
        """Mirrors `share` percent of the stable version's requests to the new version (answers discarded)."""
        ...

    def restore(self) -> str:
        """All traffic back to the stable version; the new version stops taking any."""
        ...

    def finish(self) -> str:
        """All traffic to the new version for good; the stable version is retired."""
        ...


DRIVERS = {"mlflow_serve": "mlflow_serve_split", "gitops": "gitops_split", "azureml_endpoint": "azureml_split"}


def driver_for(target: DeployTarget, request: DeployRequest, session: DeploySession) -> TrafficSplit:
    module = importlib.import_module(f"{__package__}.{DRIVERS[target.type]}")
    driver: TrafficSplit = module.Driver(target, request, session)
    return driver
