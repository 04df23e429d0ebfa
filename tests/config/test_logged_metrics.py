"""validate knows a criterion's metric from the metrics files and from the record of what the last run held
(config/logged): a metric only the training code logs is not refused; a damaged record is ignored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_bot.config import load_config
from mlops_bot.config.logged import record_metrics, recorded_metrics
from mlops_bot.errors import ConfigError
from mlops_bot.support.state import RUN_METRICS_FILE, state_path

ML_YAML = """\
version: 1
model: {name: m, artifact: model}
pipeline:
  train: {cmd: [python, train.py], outs: [model], metrics: metrics.json}
compare:
  criteria:
    - {metric: accuracy, threshold: 0.5}
    - {metric: train_loss, greater_is_better: false, threshold: 1}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "ml.yaml").write_text(ML_YAML)
    (tmp_path / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))  # after a run: the file exists
    state_path(tmp_path).mkdir()
    return tmp_path


def test_a_metric_the_last_run_held_is_known(project: Path) -> None:
    with pytest.raises(ConfigError, match="'train_loss' is not produced by any step"):
        load_config(project / "ml.yaml", env={})
    record_metrics(project, "r1", ["train_loss", "accuracy"])
    assert recorded_metrics(project) == {"train_loss", "accuracy"}
    assert load_config(project / "ml.yaml", env={}).compare.criteria[1].metric == "train_loss"


@pytest.mark.parametrize("damaged", ["{", json.dumps({"format": 99, "metrics": ["train_loss"]}),
                                     json.dumps({"format": 1, "metrics": "train_loss"})])
def test_a_damaged_or_foreign_record_is_ignored(project: Path, damaged: str) -> None:
    state_path(project, RUN_METRICS_FILE).write_text(damaged)
    assert recorded_metrics(project) == set()
    with pytest.raises(ConfigError, match="train_loss"):
        load_config(project / "ml.yaml", env={})
