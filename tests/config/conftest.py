from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def project(tmp_path: Path) -> Callable[[str], Path]:
    """Writes an ml.yaml (dedented) into a project directory that has the files tests.helpers.ml_yaml.VALID
    depends on."""
    for name in ("prepare.py", "train.py", "evaluate.py"):
        (tmp_path / name).write_text("print('hi')\n")
    (tmp_path / "params.yaml").write_text("seed: 1\ntrain: {C: 0.5}\n")

    def write(text: str) -> Path:
        path = tmp_path / "ml.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write
