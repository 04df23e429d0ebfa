"""Decisions and what they are made of, built directly from the frozen dataclasses: criteria, champions,
challengers, Configs for compare, whole Decisions (for the decide tests and for the forges' reports), and the
decision schema's validator."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import jsonschema

from mlops_bot.config.model import (
    ChampionSelector,
    Compare,
    Config,
    Criterion,
    Model,
    Promote,
    Regression,
    Report,
    Significance,
    Step,
    Tracking,
)
from mlops_bot.decide.decision import Challenger, Champion, CriterionResult, Decision, HistoryPoint
from mlops_bot.decide.document import to_document
from mlops_bot.decide.verdict import decide
from tests.helpers.ci_env import HEAD_SHA

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
REPO = Path(__file__).resolve().parents[2]
DECISION_SCHEMA = json.loads((REPO / "schemas" / "decision.schema.json").read_text(encoding="utf-8"))
DECISION_VALIDATOR = jsonschema.Draft202012Validator(DECISION_SCHEMA)
MODEL = "iris-classifier"

ACCURACY = Criterion("accuracy", threshold=0.9, min_absolute_change=0.005)
LATENCY = Criterion("latency_ms", greater_is_better=False, max_regression=Regression(relative=0.10))


def make_config(compare: Compare, root: Path = Path("/nonexistent"), history: int = 10,
                model: str = MODEL) -> Config:
    """A Config for compare: one evaluate step with metrics and predictions, no deploy target."""
    evaluate = Step("evaluate", "python evaluate.py", metrics="build/metrics.json",
                    predictions="build/predictions.csv")
    return Config(path=root / "ml.yaml", root=root, digest="0" * 64, version=1,
                  model=Model(model, "build/model"), tracking=Tracking("local", "iris"),
                  params_file=None, pipeline={"evaluate": evaluate}, compare=compare, promote=Promote(),
                  deploy=(), report=Report(history=history), rules=())


def compare_of(*criteria: Criterion, significance: Significance | None = None) -> Compare:
    return Compare(champion=ChampionSelector(), criteria=criteria, significance=significance)


def champion(metrics: Mapping[str, float], version: str | None = "3", *, rescored: Mapping[str, float] | None = None,
             params: Mapping[str, str] | None = None, source: str = "") -> Champion:
    return Champion(version=version, run_id="c0ffee" * 5 + "ab", metrics=dict(metrics), rescored_metrics=rescored,
                    params=dict(params or {}), source=source)


def challenger(metrics: Mapping[str, float], *, params: Mapping[str, str] | None = None,
               lineage: Mapping[str, str] | None = None) -> Challenger:
    return Challenger(run_id="feed" * 8, metrics=dict(metrics), params=dict(params or {}),
                      lineage=dict(lineage or {}), source="run")


def sample_decision() -> Decision:
    """A typical passing PR check: two criteria, params changed, lineage, five earlier champions."""
    history = tuple(HistoryPoint(str(v), f"run{v}", {"accuracy": 0.9 + v / 200, "latency_ms": 100.0 + v},
                                 created_at=1_735_689_600_000 + v * 86_400_000) for v in range(1, 4))
    return decide(
        "iris-classifier", compare_of(ACCURACY, LATENCY),
        challenger({"accuracy": 0.951, "latency_ms": 110.0, "f1": 0.94}, params={"C": "0.5", "seed": "1"},
                   lineage={"experiment": "1", "commit": "a1b2c3d4e5f6a7b8", "branch": "feature/tune-c"}),
        champion({"accuracy": 0.915, "latency_ms": 103.0}, params={"C": "1.0", "seed": "1", "solver": "lbfgs"},
                 source="models:/iris-classifier@champion"),
        now=NOW,
    ).with_history(history)


def make_decision(passed: bool = True, model: str = MODEL, accuracy: float = 0.95) -> Decision:
    """A one-criterion Decision on the fixture payloads' head commit, as the forges report it."""
    criterion = CriterionResult(
        metric="accuracy", greater_is_better=True, passed=passed, reason="0.95 >= 0.9" if passed else "below 0.9",
        criterion=">= 0.9", challenger=accuracy, champion=0.93, baseline="logged", change=accuracy - 0.93,
        change_pct=100 * (accuracy - 0.93) / 0.93)
    return Decision(
        model=model, verdict="pass" if passed else "fail", bootstrap=False,
        summary="all 1 criteria passed" if passed else "1 of 1 criteria failed",
        challenger=Challenger(run_id="r" * 32, metrics={"accuracy": accuracy, "latency_ms": 12.5}, source="run",
                              lineage={"commit": HEAD_SHA}),
        champion=Champion(version="3", run_id="c" * 32, metrics={"accuracy": 0.93}, source=f"models:/{model}@champion"),
        criteria=(criterion,), created_at="2024-05-01T12:00:00Z")


def write_decision(directory: Path, decision: Decision, name: str = "decision.json") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(to_document(decision)), encoding="utf-8")
    return path
