"""A small project whose runs are made directly in the registry, so promotion tests need no training (the
project and its helpers: tests/helpers/projects.py and registries.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.config.model import Config
from tests.helpers.projects import DEPLOY_RECORD, write_project


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Config]:
    def make(model: str = "demo", uri: str = "local", deploy: str = DEPLOY_RECORD, name: str = "project") -> Config:
        return write_project(tmp_path / name, model, uri, deploy)

    return make
