from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

VALID = """\
version: 1
model: {name: demo, artifact: build/model}
params: params.yaml
pipeline:
  prepare:
    cmd: python prepare.py
    deps: [prepare.py]
    params: [seed]
    outs: [build/data.csv]
  train:
    cmd: [python, train.py]
    deps: [train.py, build/data.csv]
    outs: [build/model]
  evaluate:
    cmd: python evaluate.py
    deps: [build/model, build/data.csv]
    metrics: build/metrics.json
    predictions: build/predictions.csv
compare:
  criteria:
    - {metric: accuracy, threshold: 0.8, min_absolute_change: 0.01}
    - {metric: latency_ms, greater_is_better: false, max_regression: {relative: 0.1}}
  significance: {metric: accuracy, test: mcnemar}
deploy:
  - {name: hook, type: webhook, url: "https://example.invalid/deploy", secret_env: HOOK_SECRET}
on:
  - {event: model_version.alias_set, where: {alias: champion}, do: [deploy]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Callable[[str], Path]:
    """Writes an ml.yaml (dedented) into a project directory that has the files VALID depends on."""
    for name in ("prepare.py", "train.py", "evaluate.py"):
        (tmp_path / name).write_text("print('hi')\n")
    (tmp_path / "params.yaml").write_text("seed: 1\ntrain: {C: 0.5}\n")

    def write(text: str) -> Path:
        path = tmp_path / "ml.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write
