"""The significance engine against independent implementations: statsmodels (McNemar, Clopper-Pearson, Holm),
scipy (binomtest, and bootstrap's BCa on the same resamples) and scikit-learn (the metrics on each resample)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as sk
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from mlops_bot.config.model import Significance
from mlops_bot.decide import significance as sig
from mlops_bot.decide.measures import prepare
from mlops_bot.metrics.predictions import ModelRows, PairedRows


def rows_of(truth: Any = None, ours: Any = None, theirs: Any = None, columns: tuple[dict[str, Any], dict[str, Any]]
            = ({}, {})) -> PairedRows:
    n = len(truth) if truth is not None else len(next(iter(columns[0].values())))
    def model(name: str, pred: Any, cols: dict[str, Any]) -> ModelRows:
        return ModelRows(Path(name), None if pred is None else tuple(str(v) for v in pred),
                         {k: tuple(float(x) for x in v) for k, v in cols.items()})
    return PairedRows(tuple(str(i) for i in range(n)), None if truth is None else tuple(str(v) for v in truth),
                      model("ours", ours, columns[0]), model("theirs", theirs, columns[1]))


def table_rows(b: int, c: int, both: int, neither: int) -> PairedRows:
    truth = ["1"] * (b + c + both + neither)
    return rows_of(truth, ["1"] * b + ["0"] * c + ["1"] * both + ["0"] * neither,
                   ["0"] * b + ["1"] * c + ["1"] * both + ["0"] * neither)


def tables(count: int, seed: int) -> list[tuple[int, int, int, int]]:
    rng = np.random.default_rng(seed)
    found = [(4, 0, 996, 0), (9, 1, 50, 3), (12, 12, 10, 0), (0, 5, 20, 1), (200, 160, 600, 40)]
    for _ in range(count):
        scale = int(rng.choice([10, 40, 200, 2000]))
        b, c = (int(x) for x in rng.integers(0, scale, 2))
        found.append((b, c, int(rng.integers(1, 500)), int(rng.integers(0, 100))))
    return found


@pytest.mark.parametrize(("b", "c", "both", "neither"), tables(25, seed=1))
def test_mcnemar_p_values_are_statsmodels_and_scipys(b: int, c: int, both: int, neither: int) -> None:
    rows = table_rows(b, c, both, neither)
    one = sig.test_metric(Significance(("accuracy",)), rows, "accuracy", True)
    two = sig.test_metric(Significance(("accuracy",), alternative="two-sided"), rows, "accuracy", True)
    if b + c == 0:
        assert one.p_value == two.p_value == 1.0
        return
    assert one.p_value == pytest.approx(stats.binomtest(b, b + c, alternative="greater").pvalue, rel=1e-12, abs=1e-300)
    reference = sm_mcnemar([[neither, c], [b, both]], exact=True).pvalue  # statsmodels: off-diagonals b and c
    # scipy.special's bdtr (cephes) and binom.cdf (Boost), which statsmodels calls, agree to a few 1e-12
    assert two.p_value == pytest.approx(reference, rel=1e-10, abs=1e-300)
    low, high = proportion_confint(b, b + c, alpha=0.1, method="beta")  # Clopper-Pearson, 90% two-sided
    n = b + c + both + neither
    assert (one.ci_low, one.ci_high) == pytest.approx(((b + c) / n * (2 * low - 1), (b + c) / n * (2 * high - 1)),
                                                      rel=1e-9, abs=1e-12)
    assert one.ci_low is not None and (one.ci_low > 0) == (one.p_value <= 0.05)


def test_the_corrected_chi_square_only_approximates_the_exact_test() -> None:
    """Why the engine is exact at every size: from 25 discordant rows on, statsmodels' continuity-corrected
    chi-square (halved: one-sided) is within 0.0012 of the exact p, never closer to the truth than the truth."""
    worst = 0.0
    for m in (25, 26, 30, 40, 60, 100, 250):
        for b in range(m // 2 + 1, m + 1):
            exact = sig.mcnemar([1.0] * b + [0.0] * (m - b), [0.0] * b + [1.0] * (m - b), metric="accuracy",
                                alpha=0.05).p_value
            chi = sm_mcnemar([[10, m - b], [b, 100]], exact=False, correction=True).pvalue / 2
            assert exact is not None
            worst = max(worst, abs(exact - chi))
    assert 0.0005 < worst < 0.0012


def bootstrap_reference(statistic: Callable[..., Any], data: tuple[Any, ...], spec: Significance, batch: int,
                        vectorized: bool = True) -> Any:
    tail = spec.alpha if spec.alternative == "better" else spec.alpha / 2
    return stats.bootstrap(data, statistic, paired=True, vectorized=vectorized, n_resamples=spec.resamples,
                           batch=batch, rng=spec.seed, method="BCa", confidence_level=1 - 2 * tail)


@pytest.mark.parametrize(("n", "up", "alternative", "seed"), [(300, True, "better", 0), (300, False, "better", 1),
                                                             (1200, True, "two-sided", 2), (57, False, "two-sided", 3)])
def test_the_bootstrap_interval_is_scipys_bca(n: int, up: bool, alternative: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    theirs = rng.gamma(2.0, 1.0, n)
    ours = theirs + rng.normal(0.1, 0.8, n) * rng.gamma(1.0, 1.0, n)  # skewed differences: BCa corrects
    rows = rows_of(columns=({"m": ours}, {"m": theirs}))
    spec = Significance(("m",), resamples=3000, seed=seed + 10, alternative=alternative)
    result = sig.test_metric(spec, rows, "m", up)
    _, kernel = prepare("m", rows)
    reference = bootstrap_reference(lambda a, b, axis: a.mean(axis=axis) - b.mean(axis=axis), (ours, theirs),
                                    spec, kernel.batch)
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(reference.confidence_interval), rel=1e-9, abs=1e-12)
    se = reference.standard_error
    z = stats.norm.ppf(1 - (0.05 if alternative == "better" else 0.025)) + stats.norm.ppf(0.8)
    assert result.mde == pytest.approx(z * se, rel=1e-9)


def f1_macro(truth: Any, ours: Any, theirs: Any) -> float:
    return float(sk.f1_score(truth, ours, average="macro") - sk.f1_score(truth, theirs, average="macro"))


def rmse(truth: Any, ours: Any, theirs: Any) -> float:
    return float(sk.root_mean_squared_error(truth, ours) - sk.root_mean_squared_error(truth, theirs))


def auc(truth: Any, ours: Any, theirs: Any) -> float:
    return float(sk.roc_auc_score(truth, ours) - sk.roc_auc_score(truth, theirs))


@pytest.mark.parametrize("metric", ["f1_macro", "rmse", "roc_auc", "roc_auc with ties"])
def test_metrics_recomputed_by_scikit_learn_on_scipys_resamples_give_the_same_interval(metric: str) -> None:
    """scipy.stats.bootstrap calls scikit-learn on each resample and each jackknife sample, so this also checks
    the engine's O(n) jackknife and its vectorised metrics, resample by resample."""
    rng = np.random.default_rng(5)
    n = 100
    if metric == "f1_macro":
        truth = rng.integers(0, 4, n)
        ours, theirs = (np.where(rng.random(n) < r, truth, rng.integers(0, 4, n)) for r in (0.7, 0.6))
        rows, statistic = rows_of(truth, ours, theirs), f1_macro
    elif metric == "rmse":
        truth = rng.normal(0, 2, n)
        ours, theirs = truth + rng.normal(0, 1, n), truth + rng.normal(0, 1.2, n)
        rows, statistic = rows_of(truth, ours, theirs), rmse
    else:
        truth = rng.integers(0, 2, n)
        ours, theirs = (truth * s + rng.normal(0, 1, n) for s in (1.5, 1.0))
        if metric == "roc_auc with ties":
            ours, theirs, metric = np.round(ours, 1), np.round(theirs, 1), "roc_auc"
        rows, statistic = rows_of(truth, columns=({"y_score": ours}, {"y_score": theirs})), auc
    spec = Significance((metric,), resamples=250, seed=3)
    result = sig.test_metric(spec, rows, metric, metric != "rmse")
    _, kernel = prepare(metric, rows)
    assert kernel.shares is None  # resampled by row index, as scipy does
    reference = bootstrap_reference(statistic, (truth, ours, theirs), spec, kernel.batch, vectorized=False)
    assert result.observed == pytest.approx(statistic(truth, ours, theirs), abs=1e-12)
    low, high = reference.confidence_interval
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 2, 3, 4, 5, 7])
def test_the_bootstrap_p_value_is_where_scipys_bca_bound_crosses_zero(seed: int) -> None:
    """Within a resample or so (the + 1 of (k + 1)/(B + 1)): a little below alpha = p scipy's BCa bound is under 0,
    a little above, over it."""
    rng = np.random.default_rng(100 + seed)
    theirs = rng.gamma(2.0, 1.0, 400)
    ours = theirs + rng.normal(0.07, 0.6, 400) * rng.gamma(1.0, 1.0, 400)
    rows = rows_of(columns=({"m": ours}, {"m": theirs}))
    spec = Significance(("m",), resamples=5000, seed=seed)
    p = sig.test_metric(spec, rows, "m", True).p_value
    assert p is not None and 0.005 < p < 0.45
    _, kernel = prepare("m", rows)
    statistic = lambda a, b, axis: a.mean(axis=axis) - b.mean(axis=axis)  # noqa: E731
    first = bootstrap_reference(statistic, (ours, theirs), spec, kernel.batch)
    for factor, sign in ((0.8, -1), (1.2, 1)):
        again = stats.bootstrap((ours, theirs), statistic, paired=True, vectorized=True, n_resamples=0,
                                bootstrap_result=first, method="BCa", confidence_level=1 - 2 * p * factor)
        assert np.sign(again.confidence_interval.low) == sign


def test_without_bias_or_acceleration_the_p_value_is_k_plus_one_over_b_plus_one() -> None:
    d = np.concatenate([np.linspace(-1, 1, 1001), [0.0]])  # symmetric around the estimate 0: z0 = 0
    jack = np.array([-1.0, 0.0, 1.0])  # symmetric: no acceleration
    p, low, high, kind = sig.bca(d + 0.5, 0.5, jack, 0.05, "better")
    k = int(np.count_nonzero(d + 0.5 <= 0))
    assert kind == "BCa" and p == pytest.approx((k + 1) / (len(d) + 1), rel=1e-12)
    assert (low, high) == pytest.approx(tuple(np.quantile(d + 0.5, [0.05, 0.95])), rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_holm_is_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = list(rng.uniform(0, 0.2, int(rng.integers(2, 9))))
    assert sig.holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]), rel=1e-12, abs=1e-15)


def test_the_jackknife_is_the_metric_without_each_row() -> None:
    rng = np.random.default_rng(9)
    n = 60
    truth = rng.integers(0, 3, n)
    scores = [np.round(rng.random((n, 3)), 1) for _ in range(2)]  # ties within and across classes
    labels = [np.where(rng.random(n) < 0.7, truth, rng.integers(0, 3, n)) for _ in range(2)]
    numbers = [truth + rng.normal(0, 1, n) for _ in range(2)]
    cases = {
        "f1_macro": rows_of(truth, *labels), "balanced_accuracy": rows_of(truth, *labels),
        "r2": rows_of(truth, *numbers), "rmse": rows_of(truth, *numbers),
        "roc_auc": rows_of(truth, columns=tuple({f"proba_{c}": s[:, c] for c in range(3)} for s in scores)),
    }
    left_out = np.array([[j for j in range(n) if j != i] for i in range(n)])
    for metric, rows in cases.items():
        _, kernel = prepare(metric, rows)
        assert kernel.jackknife() == pytest.approx(kernel.diffs(left_out), rel=1e-9, abs=1e-12), metric


@pytest.mark.parametrize("metric", ["f1_macro", "accuracy"])
def test_resampling_kinds_of_rows_is_resampling_rows(metric: str) -> None:
    """Counts of each kind of row (multinomial) and row indices give the same bootstrap distribution."""
    rng = np.random.default_rng(12)
    truth = rng.integers(0, 3, 3000)
    ours, theirs = (np.where(rng.random(3000) < r, truth, rng.integers(0, 3, 3000)) for r in (0.72, 0.7))
    rows = rows_of(truth, ours, theirs)
    spec = Significance((metric,), resamples=20_000, seed=1)
    _, by_kind = prepare(metric, rows)
    _, by_row = prepare(metric, rows)
    by_row.shares = None
    assert by_kind.shares is not None and len(by_kind.shares) <= 27
    first, second = (sig.bootstrap_test(spec, metric, kernel, 1.0, None) for kernel in (by_kind, by_row))
    assert first.observed == second.observed and first.mde is not None and second.mde is not None
    assert first.mde == pytest.approx(second.mde, rel=0.03)
    se = first.mde / 2.486
    assert first.interval is not None and second.interval is not None
    assert first.interval == pytest.approx(second.interval, abs=0.05 * se)
    assert first.p == pytest.approx(second.p, abs=0.01)
