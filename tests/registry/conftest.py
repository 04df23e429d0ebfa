from __future__ import annotations

from collections.abc import Callable

import pytest

from mlops_bot.registry.base import Registry
from tests.helpers.registries import REGISTRY_KINDS


@pytest.fixture(params=[pytest.param(kind, marks=[pytest.mark.mlflow] if kind != "local" else [])
                        for kind in REGISTRY_KINDS])
def registry(request: pytest.FixtureRequest, registry_factory: Callable[..., Registry]) -> Registry:
    """Each implementation in turn; the MLflow ones page 3 items at a time so every search pages."""
    kind: str = request.param
    return registry_factory(kind) if kind == "local" else registry_factory(kind, page_size=3)
