"""compare.significance in ml.yaml: which metrics are tested, which way is better, and noise named at validate."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.config import load_config
from mlops_bot.errors import ConfigError
from tests.helpers.ml_yaml import VALID

SIGNIFICANCE = "  significance: {metric: accuracy, test: mcnemar}\n"


def with_significance(block: str) -> str:
    assert SIGNIFICANCE in VALID
    return VALID.replace(SIGNIFICANCE, block)


def test_a_tested_metric_no_criterion_names_needs_a_declared_direction(project: Callable[[str], Path]) -> None:
    path = project(with_significance("  significance: {metrics: [accuracy, log_loss]}\n"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    [problem] = caught.value.problems
    assert (problem.line, problem.path) == (23, "compare.significance.metrics[1]")
    assert "'log_loss' is tested but no criterion names it" in problem.message
    assert "greater_is_better" in problem.message
    declared = project(with_significance("  significance: {metrics: [accuracy, log_loss], greater_is_better: false}\n"))
    assert load_config(declared, env={}).compare.significance.metrics == ("accuracy", "log_loss")  # type: ignore


def test_a_criterion_marked_significant_joins_the_tested_metrics(project: Callable[[str], Path]) -> None:
    text = with_significance("").replace("max_regression: {relative: 0.1}}",
                                         "max_regression: {relative: 0.1}, significant: true}")
    significance = load_config(project(text), env={}).compare.significance
    assert significance is not None
    assert (significance.metrics, significance.test, significance.alternative, significance.correction) == (
        ("latency_ms",), "auto", "better", "holm")


def test_metric_and_metrics_are_one_or_the_other(project: Callable[[str], Path]) -> None:
    path = project(with_significance("  significance: {metric: accuracy, metrics: [accuracy]}\n"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    [problem] = caught.value.problems
    assert (problem.path, problem.message) == ("compare.significance.metrics", "give metric (one) or metrics "
                                               "(several), not both; move the metric into the metrics list")


def test_validate_names_a_rule_below_one_row_of_the_evaluation(project: Callable[[str], Path],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = project(VALID.replace("min_absolute_change: 0.01", "min_absolute_change: 0.002"))
    (path.parent / "build").mkdir()
    predictions = path.parent / "build" / "predictions.csv"
    predictions.write_text("row_id,y_true,y_pred\n" + "".join(f"{i},1,1\n" for i in range(100)))
    assert main(["-C", str(path.parent), "--json", "validate"]) == 0
    out, err = capsys.readouterr()
    [note] = json.loads(out)["notes"]  # one row of 100 is 0.01 of accuracy: 0.002 asks for less than a row
    assert note.startswith("compare.criteria[0].min_absolute_change 0.002 on accuracy is less than one row of the "
                           "100 evaluated (0.01)")
    assert f"{path}: note: {note}" in err
    predictions.write_text("row_id,y_true,y_pred\n" + "".join(f"{i},1,1\n" for i in range(1000)))
    assert main(["-C", str(path.parent), "--json", "validate"]) == 0
    assert json.loads(capsys.readouterr()[0])["notes"] == []  # one row of 1,000 is 0.001: 0.002 is two rows


def test_a_significance_block_must_name_something_to_test(project: Callable[[str], Path]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(project(with_significance("  significance: {alpha: 0.1}\n")), env={})
    [problem] = caught.value.problems
    assert (problem.line, problem.path) == (23, "compare.significance")
    assert problem.message.startswith("names no metric to test; add metric: NAME")


def test_a_criterion_metric_of_the_wrong_type_is_a_schema_problem_not_a_crash(project: Callable[[str], Path]) -> None:
    path = project(VALID.replace("- {metric: accuracy, threshold: 0.8", "- {metric: [accuracy], threshold: 0.8"))
    with pytest.raises(ConfigError) as caught:  # found by the hypothesis strategy of test_fuzz.py
        load_config(path, env={})
    assert any(p.path == "compare.criteria[0].metric" for p in caught.value.problems)
