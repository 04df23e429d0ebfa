"""The significance engine (decide/significance.py, measures.py): what it tests, in which direction, and what it says.

Each metric's observed difference is checked against scikit-learn's own function; the tests themselves against
statsmodels and scipy in test_reference.py, and their error rates in test_calibration.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as sk

from mlops_bot.config.model import Significance
from mlops_bot.decide import significance as sig
from mlops_bot.decide.measures import MEASURES, lookup
from mlops_bot.errors import DataError
from mlops_bot.metrics.predictions import ModelRows, PairedRows


def paired(y_true: Sequence[object] | None, ours: Sequence[object] | None = None,
           theirs: Sequence[object] | None = None, ours_columns: Mapping[str, Sequence[float]] | None = None,
           theirs_columns: Mapping[str, Sequence[float]] | None = None) -> PairedRows:
    n = len(y_true if y_true is not None else next(iter((ours_columns or {}).values())))

    def model(name: str, pred: Sequence[object] | None, columns: Mapping[str, Sequence[float]] | None) -> ModelRows:
        return ModelRows(Path(f"{name}.csv"), None if pred is None else tuple(str(v) for v in pred),
                         {k: tuple(float(x) for x in v) for k, v in (columns or {}).items()})

    return PairedRows(tuple(str(i) for i in range(n)), None if y_true is None else tuple(str(v) for v in y_true),
                      model("challenger", ours, ours_columns), model("champion", theirs, theirs_columns))


def spec(*metrics: str, **fields: object) -> Significance:
    return replace(Significance(metrics), **fields)  # type: ignore[arg-type]


def discordant(b: int, c: int, agree: int) -> PairedRows:
    """Labels where only the challenger is right on b rows, only the champion on c, both on `agree`."""
    truth = ["1"] * (b + c + agree)
    return paired(truth, ["1"] * b + ["0"] * c + ["1"] * agree, ["0"] * b + ["1"] * c + ["1"] * agree)


def classification(n: int, k: int, seed: int, right: tuple[float, float] = (0.8, 0.75)) -> PairedRows:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    ours, theirs = (np.where(rng.random(n) < r, truth, rng.integers(0, k, n)) for r in right)
    return paired([f"c{v}" for v in truth], [f"c{v}" for v in ours], [f"c{v}" for v in theirs])


def test_a_much_worse_log_loss_is_no_improvement() -> None:
    truth = [1, 0] * 200
    good = [0.9 if t else 0.1 for t in truth]
    bad = [0.4 if t else 0.6 for t in truth]  # far worse: higher log loss
    rows = paired(truth, ours_columns={"y_score": bad}, theirs_columns={"y_score": good})
    result = sig.test_metric(spec("log_loss"), rows, "log_loss", False)
    assert result.observed == pytest.approx(-math.log(0.4) + math.log(0.9))
    assert not result.significant and result.p_value is not None and result.p_value > 0.99
    assert result.reason.endswith("the challenger is not better (lower is better), so there is no improvement to "
                                  "call significant")
    better = sig.test_metric(spec("log_loss"), paired(truth, ours_columns={"y_score": good},
                                                      theirs_columns={"y_score": bad}), "log_loss", False)
    assert better.significant and better.ci_high is not None and better.ci_high < 0
    with pytest.raises(DataError, match=r"log_loss is lower-is-better by definition, but ml.yaml says higher"):
        sig.test_metric(spec("log_loss"), rows, "log_loss", True)


def sklearn_value(name: str, truth: Sequence[str], pred: Sequence[str]) -> float:
    average = name.rsplit("_", 1)[-1]
    if name == "balanced_accuracy":
        return float(sk.balanced_accuracy_score(truth, pred))
    function = {"f1": sk.f1_score, "precision": sk.precision_score, "recall": sk.recall_score}[name.split("_")[0]]
    return float(function(truth, pred, average=average, zero_division=0))


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("name", ["f1_macro", "f1_micro", "f1_weighted", "precision_macro", "precision_weighted",
                                  "recall_macro", "recall_micro", "recall_weighted", "balanced_accuracy"])
def test_label_metrics_are_scikit_learns(name: str) -> None:
    rows = classification(600, 5, seed=3)
    # a label only the champion predicts: macro averages differ in their labels, as scikit-learn's do
    theirs = [*(rows.champion.y_pred or ()), "c9"]
    rows = paired([*(rows.y_true or ()), "c0"], [*(rows.challenger.y_pred or ()), "c0"], theirs)
    result = sig.test_metric(spec(name, resamples=300), rows, name, True)
    truth, ours = list(rows.y_true or ()), list(rows.challenger.y_pred or ())
    expected = sklearn_value(name, truth, ours) - sklearn_value(name, truth, theirs)
    assert result.observed == pytest.approx(expected, abs=1e-12)
    assert result.test == "paired_bootstrap" or name.endswith("micro")


def test_f1_macro_tests_f1_macro_not_accuracy() -> None:
    rows = classification(1500, 4, seed=1)
    result = sig.test_metric(spec("f1_macro", resamples=2000), rows, "f1_macro", True)
    truth, ours, theirs = rows.y_true, rows.challenger.y_pred, rows.champion.y_pred
    f1 = [sk.f1_score(truth, pred, average="macro") for pred in (ours, theirs)]
    assert result.observed == pytest.approx(f1[0] - f1[1], abs=1e-12)
    assert result.observed != pytest.approx(sk.accuracy_score(truth, ours) - sk.accuracy_score(truth, theirs))
    assert result.method == "BCa bootstrap, 2000 resamples, seed 0"
    assert result.reason.startswith(f"f1_macro +{result.observed:.4g} (challenger {f1[0]:.4g}, champion {f1[1]:.4g}) "
                                    "over 1500 paired rows; 90% interval [+")


def test_binary_f1_uses_the_obvious_positive_label_and_refuses_others() -> None:
    truth, ours = ["yes", "no", "yes", "no"] * 50, ["yes", "yes", "yes", "no"] * 50
    theirs = ["no", "no", "yes", "no"] * 50
    result = sig.test_metric(spec("f1_score", resamples=200), paired(truth, ours, theirs), "f1_score", True)
    expected = sk.f1_score(truth, ours, pos_label="yes") - sk.f1_score(truth, theirs, pos_label="yes")
    assert result.observed == pytest.approx(expected)
    cats = [{"yes": "cat", "no": "dog"}[v] for v in truth]
    with pytest.raises(DataError, match=r"f1 is a binary metric, but the labels \('cat', 'dog'\) have no obvious "
                                        r"positive label .* name an average instead \(e.g. f1_macro"):
        sig.test_metric(spec("f1"), paired(cats, cats, cats), "f1", True)


@pytest.mark.parametrize(("name", "function"), [
    ("rmse", sk.root_mean_squared_error), ("root_mean_squared_error", sk.root_mean_squared_error),
    ("mse", sk.mean_squared_error), ("mae", sk.mean_absolute_error), ("r2", sk.r2_score)])
def test_regression_metrics_are_scikit_learns(name: str, function: object) -> None:
    rng = np.random.default_rng(4)
    truth = rng.normal(10, 3, 800)
    ours, theirs = truth + rng.normal(0, 1.0, 800), truth + rng.normal(0.2, 1.3, 800)
    up = name == "r2"
    result = sig.test_metric(spec(name, resamples=500), paired(truth, ours, theirs), name, up)
    values = [function(truth, pred) for pred in (ours, theirs)]  # type: ignore[operator]
    assert result.observed == pytest.approx(values[0] - values[1], rel=1e-9)
    assert result.significant


def test_rmse_reports_the_rmse_difference_not_the_mse() -> None:
    truth = [0.0] * 100
    rows = paired(truth, [1.0] * 50 + [3.0] * 50, [2.0] * 50 + [4.0] * 50)
    result = sig.test_metric(spec("rmse", resamples=200), rows, "rmse", False)
    rmse = (math.sqrt(5), math.sqrt(10))
    assert result.observed == pytest.approx(rmse[0] - rmse[1])  # -0.9262, where the MSE difference is -5
    assert result.reason.startswith("rmse -0.9262 (challenger 2.236, champion 3.162) over 100 paired rows")


@pytest.mark.parametrize("multi", [False, True])
def test_probability_metrics_are_scikit_learns(multi: bool) -> None:
    rng = np.random.default_rng(8)
    k = 3 if multi else 2
    truth = rng.integers(0, k, 500)
    columns = []
    for noise in (1.0, 1.6):
        logits = np.eye(k)[truth] * 2 + rng.normal(0, noise, (500, k))
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        columns.append(proba)
    def shown(p: np.ndarray) -> dict[str, list[float]]:
        return {f"proba_{c}": list(p[:, c]) for c in range(k)} if multi else {"y_score": list(p[:, 1])}
    rows = paired(truth, ours_columns=shown(columns[0]), theirs_columns=shown(columns[1]))
    auc = sig.test_metric(spec("roc_auc", resamples=300), rows, "roc_auc", True)
    loss = sig.test_metric(spec("neg_log_loss", resamples=300), rows, "neg_log_loss", True)
    if multi:
        expected = [sk.roc_auc_score(truth, p, multi_class="ovr", average="macro") for p in columns]
    else:
        expected = [sk.roc_auc_score(truth, p[:, 1]) for p in columns]
    assert auc.observed == pytest.approx(expected[0] - expected[1], abs=1e-12)
    losses = [sk.log_loss(truth, p) for p in columns]
    assert loss.observed == pytest.approx(-(losses[0] - losses[1]), abs=1e-12)
    assert auc.significant and loss.significant


def test_four_to_nothing_out_of_a_thousand_is_not_significant() -> None:
    rows = discordant(4, 0, agree=996)
    for test in ("auto", "paired_bootstrap", "mcnemar"):
        result = sig.test_metric(spec("accuracy", test=test), rows, "accuracy", True)
        assert (result.test, result.p_value, result.significant) == ("mcnemar", 0.0625, False)
        assert result.resolution == 0.001
    deferred = sig.test_metric(spec("accuracy", test="paired_bootstrap"), rows, "accuracy", True)
    assert deferred.method == "exact binomial McNemar, as the bootstrap needs 25 discordant rows and has 4"
    assert deferred.reason.endswith("not significant at alpha 0.05: the improvement is within the noise")
    two_sided = sig.test_metric(spec("accuracy", alternative="two-sided"), rows, "accuracy", True)
    assert two_sided.p_value == 0.125


def test_one_sided_at_the_declared_alpha() -> None:
    rows = discordant(9, 2, agree=200)  # one-sided exact p = 67/2048 = 0.0327, two-sided 0.0654
    result = sig.test_metric(spec("accuracy"), rows, "accuracy", True)
    assert result.p_value == pytest.approx(67 / 2048, rel=1e-12) and result.significant
    assert result.alternative == "better" and result.ci_low is not None and result.ci_low > 0
    two = sig.test_metric(spec("accuracy", alternative="two-sided"), rows, "accuracy", True)
    assert two.p_value == pytest.approx(2 * 67 / 2048, rel=1e-12) and not two.significant
    assert not sig.test_metric(spec("accuracy", alpha=0.01), rows, "accuracy", True).significant
    rng = np.random.default_rng(9)
    base = rng.normal(1, 0.5, 400)
    rows = paired(None, ours_columns={"loss": base - 0.045 + rng.normal(0, 0.5, 400)}, theirs_columns={"loss": base})
    one = sig.test_metric(spec("loss"), rows, "loss", False)
    both = sig.test_metric(spec("loss", alternative="two-sided"), rows, "loss", False)
    assert one.p_value is not None and both.p_value is not None
    assert one.significant and not both.significant  # p one-sided in (0.025, 0.05)
    assert both.p_value == pytest.approx(2 * one.p_value, rel=0.02)
    assert "90% interval" in one.reason and "95% interval" in both.reason


def test_holm_adjusts_several_metrics() -> None:
    truth = ["1"] * 213
    ours = ["1"] * 9 + ["0"] * 2 + ["1"] * 202
    theirs = ["0"] * 9 + ["1"] * 2 + ["1"] * 202
    hit_ours = [1.0] * 10 + [0.0] * 3 + [1.0] * 200
    hit_theirs = [0.0] * 10 + [1.0] * 3 + [1.0] * 200
    rows = paired(truth, ours, theirs, {"hit": hit_ours}, {"hit": hit_theirs})
    directions = {"accuracy": True, "hit": True}
    alone = sig.test_all(spec("accuracy", "hit", correction="none"), rows, directions)
    assert [r.p_value for r in alone] == pytest.approx([67 / 2048, 378 / 8192], rel=1e-12)
    assert all(r.significant and r.adjusted_p is None for r in alone)
    held = sig.test_all(spec("accuracy", "hit"), rows, directions)
    assert [r.adjusted_p for r in held] == pytest.approx([2 * 67 / 2048, 2 * 67 / 2048], rel=1e-12)
    assert not any(r.significant for r in held)
    assert "Holm-adjusted for 2 metrics 0.0654" in held[0].reason
    assert sig.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    with pytest.raises(DataError, match="no direction"):
        sig.test_all(spec("accuracy", "hit"), rows, {"accuracy": True})


def test_a_metric_of_your_own_is_the_mean_of_its_per_row_column() -> None:
    rng = np.random.default_rng(6)
    theirs = rng.gamma(2, 1, 500)
    ours = theirs * 0.8
    rows = paired(None, ours_columns={"cost": ours}, theirs_columns={"cost": theirs})
    result = sig.test_metric(spec("cost", resamples=500), rows, "cost", False)
    assert result.observed == pytest.approx(ours.mean() - theirs.mean())
    assert result.significant and result.test == "paired_bootstrap" and result.resolution is None
    scored = paired(None, ours_columns={"score": ours}, theirs_columns={"score": theirs})
    assert sig.test_metric(spec("cost", resamples=500), scored, "cost", False).observed == result.observed
    hits = paired(None, ours_columns={"hit": [1.0] * 30 + [0.0] * 70}, theirs_columns={"hit": [0.0] * 100})
    assert sig.test_metric(spec("hit"), hits, "hit", True).test == "mcnemar"  # 0/1 values: accuracy-like


def test_an_unknown_metric_says_what_is_supported_and_what_to_add() -> None:
    rows = classification(50, 3, seed=0)
    with pytest.raises(DataError) as caught:
        sig.test_metric(spec("latency_p99"), rows, "latency_p99", False)
    message = str(caught.value)
    assert "cannot compute 'latency_p99'" in message and "f1_macro" in message and "root_mean_squared_error" in message
    assert "write each row's value in a column named 'latency_p99' in both files: its mean is the metric" in message


def test_missing_inputs_name_the_column_to_add() -> None:
    rows = classification(50, 3, seed=0)
    with pytest.raises(DataError, match=r"roc_auc needs each model's probabilities: challenger.csv has neither a "
                                        r"y_score column"):
        sig.test_metric(spec("roc_auc"), rows, "roc_auc", True)
    with pytest.raises(DataError, match=r"rmse needs finite numbers, but y_true of the challenger's file has 'c"):
        sig.test_metric(spec("rmse"), rows, "rmse", False)
    with pytest.raises(DataError, match=r"mcnemar tests 0/1 per-row correctness .* f1_macro is not"):
        sig.test_metric(spec("f1_macro", test="mcnemar"), rows, "f1_macro", True)
    with pytest.raises(DataError, match="hold no rows"):
        sig.test_metric(spec("accuracy"), paired([], [], []), "accuracy", True)


def test_mcnemar_numbers_and_wording() -> None:
    result = sig.test_metric(spec("accuracy"), discordant(40, 22, agree=938), "accuracy", True)
    se = math.sqrt((0.062 - 0.018**2) / 1000)
    assert result.mde == pytest.approx((1.6448536269514722 + 0.8416212335729143) * se)
    assert result.statistic == 40 and result.observed == pytest.approx(0.018)
    assert result.reason == (
        "accuracy +0.018 (challenger 0.978, champion 0.96) over 1000 paired rows; the challenger alone is better on "
        "40 rows and the champion alone on 22; 90% interval [+0.004145, +0.03052]; p = 0.015 one-sided (exact "
        "binomial McNemar); minimum detectable effect 0.0195 at 80% power: significant at alpha 0.05")
    error = sig.test_metric(spec("error_rate"), discordant(40, 22, agree=938), "error_rate", False)
    assert (error.p_value, error.observed) == (result.p_value, pytest.approx(-0.018))
    assert (error.ci_low, error.ci_high) == pytest.approx((-0.03052, -0.004145), abs=1e-5)


def test_the_bootstrap_is_seeded() -> None:
    rows = classification(400, 3, seed=5)
    first, again = (sig.test_metric(spec("f1_macro", resamples=500, seed=7), rows, "f1_macro", True)
                    for _ in range(2))
    other = sig.test_metric(spec("f1_macro", resamples=500, seed=8), rows, "f1_macro", True)
    assert first == again and first.ci_low != other.ci_low


def test_registry_names_and_directions() -> None:
    assert lookup("accuracy_score") is MEASURES["accuracy"] and lookup("R2_SCORE") is MEASURES["r2"]
    negated = lookup("neg_root_mean_squared_error")
    assert negated is not None and negated.greater_is_better is True
    assert lookup("neg_accuracy") is None and lookup("latency") is None
    assert not MEASURES["log_loss"].greater_is_better and MEASURES["roc_auc"].greater_is_better


def test_ten_thousand_resamples_of_f1_macro_on_3000_rows_with_ten_classes() -> None:
    rows = classification(3000, 10, seed=11)
    started = time.process_time()  # CPU seconds (all threads): the engine's cost, whatever else the machine runs
    result = sig.test_metric(spec("f1_macro"), rows, "f1_macro", True)
    elapsed = time.process_time() - started
    assert result.method == "BCa bootstrap, 10000 resamples, seed 0"
    assert elapsed < 5, elapsed  # about 0.6 s on one core


def test_the_old_mcnemar_entry_point_takes_per_row_scores() -> None:
    result = sig.mcnemar([1.0] * 9 + [0.0] * 2, [0.0] * 9 + [1.0] * 2, metric="accuracy", alpha=0.05)
    assert result.p_value == pytest.approx(67 / 2048) and result.significant
    with pytest.raises(DataError, match="0 or 1"):
        sig.mcnemar([0.5], [1.0], metric="accuracy", alpha=0.05)
