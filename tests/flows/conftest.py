"""A small project whose runs are made directly in the registry, so promotion tests need no training."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.config import load_config
from mlops_bot.config.model import Config
from mlops_bot.registry.base import Registry

ML_YAML = """\
version: 1
model: {{name: {model}, artifact: build/model}}
tracking: {{uri: "{uri}", experiment: {model}}}
pipeline:
  evaluate:
    cmd: [python, -c, "pass"]
    outs: [build/model]
    metrics: build/metrics.json
compare:
  criteria:
    - {{metric: accuracy, threshold: 0.5, min_absolute_change: 0.01}}
deploy:
{deploy}
"""
DEPLOY_RECORD = """\
  - name: record
    type: command
    cmd: "echo $MODEL_VERSION >> deployed.txt && test ! -e fail-deploy"
"""


def write_project(root: Path, model: str, uri: str = "local", deploy: str = DEPLOY_RECORD, rules: str = "") -> Config:
    """`rules`: lines of an `on:` list (none when empty)."""
    root.mkdir(parents=True, exist_ok=True)
    text = ML_YAML.format(model=model, uri=uri, deploy=deploy or "  []") + (f"on:\n{rules}\n" if rules else "")
    (root / "ml.yaml").write_text(textwrap.dedent(text))
    return load_config(root / "ml.yaml", env={})


def make_run(registry: Registry, config: Config, accuracy: float, workdir: Path) -> str:
    """A finished run with metrics and a model artifact, as `mlops-bot run` leaves one."""
    experiment = registry.get_or_create_experiment(config.tracking.experiment)
    run = registry.create_run(experiment.experiment_id, f"acc-{accuracy}", {"mlflow.source.git.commit": "c0ffee"})
    registry.log_batch(run.run_id, params={"C": str(accuracy)}, metrics={"accuracy": accuracy})
    model_dir = workdir / f"model-{run.run_id}"
    model_dir.mkdir(parents=True)
    (model_dir / "model.txt").write_text(f"accuracy {accuracy}\n")
    registry.upload_artifacts(run.run_id, model_dir, "model")
    registry.update_run(run.run_id, "FINISHED")
    return run.run_id


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Config]:
    def make(model: str = "demo", uri: str = "local", deploy: str = DEPLOY_RECORD, name: str = "project") -> Config:
        return write_project(tmp_path / name, model, uri, deploy)

    return make
