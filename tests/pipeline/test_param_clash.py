"""A param a step logged itself with another spelling of the same value (`1.0` where params.yaml says `1`) on
the real MLflow server: the clash is reported once, the bot's other params are all logged."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.registry import open_registry
from tests.helpers.pipeline_project import PY, cli

STEP = (
    "import json, mlflow, pathlib\n"
    "mlflow.log_param('train.C', 1.0)\n"
    "pathlib.Path('model').mkdir()\n"
    "pathlib.Path('model/weights.txt').write_text('w')\n"
    "pathlib.Path('metrics.json').write_text(json.dumps({'accuracy': 0.5}))\n"
)

ML_YAML = """\
version: 1
model: {{name: clash, artifact: model}}
tracking: {{uri: "{uri}", experiment: "{experiment}"}}
params: params.yaml
pipeline:
  train:
    cmd: [{py}, train.py]
    deps: [train.py]
    params: [prepare.seed, train.C, train.max_iter, train.solver]
    outs: [model]
    metrics: metrics.json
"""


@pytest.mark.mlflow
def test_a_param_logged_by_the_step_with_another_spelling_keeps_the_others(mlflow_server: Any,
                                                                           tmp_path: Path) -> None:
    experiment = f"clash-{uuid.uuid4().hex[:8]}"
    (tmp_path / "train.py").write_text(STEP)
    (tmp_path / "params.yaml").write_text("prepare: {seed: 7}\ntrain: {C: 1, max_iter: 100, solver: lbfgs}\n")
    (tmp_path / "ml.yaml").write_text(ML_YAML.format(uri=mlflow_server.uri, experiment=experiment,
                                                     py=json.dumps(PY)))
    done = cli(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    registry = open_registry(mlflow_server.uri, tmp_path)
    try:
        run = registry.get_run(json.loads(done.stdout)["run_id"])
    finally:
        registry.close()
    assert run.status == "FINISHED"
    assert run.params == {"train.C": "1.0", "prepare.seed": "7", "train.max_iter": "100", "train.solver": "lbfgs"}
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, done.stderr
    assert "train.C" in warnings[0] and "'1.0'" in warnings[0] and "'1'" in warnings[0]
    assert "equal as numbers" in warnings[0]
