from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_bot.registry import open_registry
from mlops_bot.registry.base import Registry
from tests.helpers.pipeline_project import COUNTER_ENV, make_project


@pytest.fixture
def counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file outside the project where every step execution is appended (steps inherit the env)."""
    path = tmp_path / "executions.txt"
    monkeypatch.setenv(COUNTER_ENV, str(path))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def registry(project: Path) -> Iterator[Registry]:
    reg = open_registry("local", project)
    yield reg
    reg.close()
