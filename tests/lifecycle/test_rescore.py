"""Fair comparison: the champion's model is scored again by the evaluate step on today's data."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from mlops_bot.config import load_config
from mlops_bot.errors import DataError
from mlops_bot.flows.compare import compare_registry
from mlops_bot.pipeline.execute import run_pipeline
from mlops_bot.registry import open_registry
from tests.helpers.projects import LOCAL

# The "model" is a number; its score is how close it is to the number in today's data.
TRAIN = 'import os; os.makedirs("build/model", exist_ok=True); open("build/model/w", "w").write(open("w.txt").read())\n'
EVALUATE = """\
import json, os
model = os.environ.get("MLOPS_BOT_MODEL_DIR", "build/model")
out = os.environ.get("MLOPS_BOT_METRICS_FILE", "build/metrics.json")
w, target = float(open(os.path.join(model, "w")).read()), float(open("data.txt").read())
json.dump({"score": round(1 - abs(w - target), 6)}, open(out, "w"))
"""
ML_YAML = """\
version: 1
model: {name: fair, artifact: build/model}
pipeline:
  train: {cmd: [python, train.py], deps: [train.py, w.txt], outs: [build/model]}
  evaluate: {cmd: [python, evaluate.py], deps: [evaluate.py, build/model, data.txt], metrics: build/metrics.json}
compare:
  rescore_champion: true
  criteria:
    - {metric: score, threshold: 0.1, min_absolute_change: 0.05}
"""


def project(root: Path, evaluate: str = EVALUATE) -> Path:
    root.mkdir()
    for name, text in (("train.py", TRAIN), ("evaluate.py", evaluate), ("ml.yaml", ML_YAML),
                       ("w.txt", "0.5"), ("data.txt", "0.5")):
        (root / name).write_text(textwrap.dedent(text))
    return root


def first_champion(root: Path) -> None:
    from mlops_bot.flows.promote import promote_flow

    config = load_config(root / "ml.yaml", env={})
    registry = open_registry("local", root)
    run = run_pipeline(config, registry)
    promote_flow(config, registry, compare_registry(config, registry, run.run_id), LOCAL, run_given=True)


def test_champion_is_judged_on_todays_data(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    first_champion(root)  # w=0.5 scored 1.0 on data 0.5
    (root / "data.txt").write_text("0.9")  # the world moved: the champion now scores 0.6
    (root / "w.txt").write_text("0.8")  # the challenger scores 0.9 on today's data
    config = load_config(root / "ml.yaml", env={})
    registry = open_registry("local", root)
    run = run_pipeline(config, registry)
    decision = compare_registry(config, registry, run.run_id)
    assert decision.champion is not None
    assert decision.champion.metrics["score"] == 1.0  # as logged when it was trained
    assert decision.champion.rescored_metrics == {"score": 0.6}
    assert decision.passed, decision.summary  # judged against 0.6 (today), not 1.0 (history)
    (result,) = decision.criteria
    assert result.champion == 0.6 and result.baseline == "rescored"
    assert json.loads((root / "build" / "metrics.json").read_text()) == {"score": 0.9}  # the challenger's own


def test_an_evaluate_step_that_ignores_the_contract_is_a_clear_error(tmp_path: Path) -> None:
    honoured = 'os.environ.get("MLOPS_BOT_METRICS_FILE", "build/metrics.json")'
    ignoring = EVALUATE.replace(honoured, '"build/metrics.json"')
    root = project(tmp_path / "p", ignoring)
    first_champion(root)
    (root / "w.txt").write_text("0.6")
    config = load_config(root / "ml.yaml", env={})
    registry = open_registry("local", root)
    run = run_pipeline(config, registry)
    before = (root / "build" / "metrics.json").read_bytes()
    with pytest.raises(DataError, match="did not write MLOPS_BOT_METRICS_FILE"):
        compare_registry(config, registry, run.run_id)
    assert (root / "build" / "metrics.json").read_bytes() == before  # restored after the step overwrote it


def test_the_champions_rescoring_sees_no_secret_and_no_tracking_server(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    spy = tmp_path / "seen.json"
    dump = f"\nif 'MLOPS_BOT_MODEL_DIR' in os.environ: json.dump(dict(os.environ), open({str(spy)!r}, 'w'))\n"
    root = project(tmp_path / "p", EVALUATE + dump)
    first_champion(root)
    for name in ("GITHUB_TOKEN", "MLOPS_BOT_GITHUB_WEBHOOK_SECRET", "MLFLOW_TRACKING_PASSWORD",
                 "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, f"canary-{name}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9/")
    (root / "w.txt").write_text("0.6")
    config = load_config(root / "ml.yaml", env={})
    registry = open_registry("local", root)
    compare_registry(config, registry, run_pipeline(config, registry).run_id)
    seen = json.loads(spy.read_text())
    assert not [name for name, value in seen.items() if "canary" in value]
    assert seen["MLFLOW_TRACKING_URI"].startswith("file://")  # its own mlflow logging goes to a scratch store
    assert seen["HOME"] == __import__("os").environ["HOME"]  # what programs need still passes
