"""The tracking run on a real MLflow server: what a step logs with mlflow itself lands in the same run."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.registry import open_registry
from mlops_bot.registry.tags import PIPELINE_KEY, step_key
from tests.helpers.pipeline_project import PY, cli

STEP = (
    "import json, mlflow, os, pathlib\n"
    "given = os.environ['MLFLOW_RUN_ID']  # mlflow removes it once it resumed the run\n"
    "mlflow.log_metric('own_loss', 0.25)\n"
    "mlflow.log_param('own_param', 'x')\n"
    "pathlib.Path('model').mkdir()\n"
    "pathlib.Path('model/weights.txt').write_text('w')\n"
    "pathlib.Path('metrics.json').write_text(json.dumps({'accuracy': 0.5}))\n"
    "print('run', given, mlflow.active_run().info.run_id)\n"
)

ML_YAML = """\
version: 1
model: {{name: own-logging, artifact: model}}
tracking: {{uri: "{uri}", experiment: "{experiment}"}}
pipeline:
  train:
    cmd: [{py}, train.py]
    deps: [train.py]
    outs: [model]
    metrics: metrics.json
"""


@pytest.mark.mlflow
def test_a_steps_own_mlflow_logging_lands_in_the_pipeline_run(mlflow_server: Any, tmp_path: Path) -> None:
    experiment = f"own-{uuid.uuid4().hex[:8]}"
    (tmp_path / "train.py").write_text(STEP)
    (tmp_path / "ml.yaml").write_text(ML_YAML.format(uri=mlflow_server.uri, experiment=experiment,
                                                     py=json.dumps(PY)))
    done = cli(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    assert f"[train] run {run_id} {run_id}" in done.stderr
    registry = open_registry(mlflow_server.uri, tmp_path)
    try:
        run = registry.get_run(run_id)
    finally:
        registry.close()
    assert run.status == "FINISHED"
    assert run.metrics == {"own_loss": 0.25, "accuracy": 0.5}
    assert run.params == {"own_param": "x"}
    assert run.tags[PIPELINE_KEY] == json.loads(done.stdout)["pipeline_key"]
    assert step_key("train") in run.tags
