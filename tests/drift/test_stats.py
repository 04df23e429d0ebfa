"""Each drift test agrees with scipy called directly on the same columns, and crosses its threshold the way
DriftTest says."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from mlops_bot.config.model import DriftTest
from mlops_bot.drift import stats as drift_stats

RNG = np.random.default_rng(7)
REF = RNG.normal(0.0, 2.0, 3000)
CUR = RNG.normal(0.3, 2.2, 2500)
REF_COUNTS = {"a": 500, "b": 300, "c": 200}
CUR_COUNTS = {"a": 380, "b": 330, "c": 260, "d": 30}


def test_ks_agrees_with_scipy() -> None:
    direct = stats.ks_2samp(REF, CUR)
    assert drift_stats.ks(REF, CUR) == pytest.approx((direct.statistic, direct.pvalue), rel=1e-12)
    results, _ = drift_stats.numeric_tests(REF, CUR, (DriftTest("ks", 0.05),))
    assert (results[0].statistic, results[0].p_value) == pytest.approx((direct.statistic, direct.pvalue), rel=1e-12)


def test_wasserstein_is_scipys_distance_over_the_reference_std() -> None:
    expected = stats.wasserstein_distance(REF, CUR) / np.std(REF)
    assert drift_stats.wasserstein(REF, CUR) == pytest.approx(expected, rel=1e-12)
    results, _ = drift_stats.numeric_tests(REF, CUR, (DriftTest("wasserstein", 0.1),))
    assert results[0].statistic == pytest.approx(expected, rel=1e-12) and results[0].p_value is None


def test_wasserstein_of_a_constant_reference_is_finite() -> None:
    constant = np.full(100, 5.0)
    assert drift_stats.wasserstein(constant, constant) == 0.0
    assert drift_stats.wasserstein(constant, constant + 1) == pytest.approx(1 / 5)
    assert drift_stats.wasserstein(np.zeros(10), np.ones(10)) == pytest.approx(1.0)


def test_numeric_psi_is_the_symmetric_kl_over_the_reference_deciles() -> None:
    edges = np.concatenate([[-np.inf], np.quantile(REF, np.linspace(0, 1, 11)[1:-1]), [np.inf]])
    p = np.histogram(REF, bins=edges)[0] / len(REF)
    q = np.histogram(CUR, bins=edges)[0] / len(CUR)
    p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    p, q = p / p.sum(), q / q.sum()
    by_formula = float(np.sum((p - q) * np.log(p / q)))
    assert by_formula == pytest.approx(stats.entropy(p, q) + stats.entropy(q, p), rel=1e-12)
    results, bins = drift_stats.numeric_tests(REF, CUR, (DriftTest("psi", 0.2),))
    assert results[0].statistic == pytest.approx(by_formula, rel=1e-12)
    assert len(bins.labels) == 10 and sum(bins.reference) == pytest.approx(1.0)


def test_chi2_agrees_with_scipy_on_the_2_by_k_table() -> None:
    table = np.array([[500, 300, 200, 0], [380, 330, 260, 30]])
    direct = stats.chi2_contingency(table)
    assert drift_stats.chi2(REF_COUNTS, CUR_COUNTS) == pytest.approx((direct.statistic, direct.pvalue), rel=1e-12)
    assert drift_stats.chi2({"a": 5}, {"a": 9}) == (0.0, 1.0)


def test_jensen_shannon_agrees_with_scipy_base_2() -> None:
    direct = distance.jensenshannon([500, 300, 200, 0], [380, 330, 260, 30], base=2)
    assert drift_stats.jensen_shannon(REF_COUNTS, CUR_COUNTS) == pytest.approx(direct, rel=1e-12)
    assert drift_stats.jensen_shannon({"a": 1}, {"b": 1}) == pytest.approx(1.0)


def test_categorical_psi_floors_a_category_seen_on_one_side() -> None:
    p = np.maximum(np.array([500, 300, 200, 0]) / 1000, 1e-4)
    q = np.maximum(np.array([380, 330, 260, 30]) / 1000, 1e-4)
    p, q = p / p.sum(), q / q.sum()
    results, bins = drift_stats.categorical_tests(REF_COUNTS, CUR_COUNTS, (DriftTest("psi", 0.2),))
    assert bins.labels == ("a", "b", "c", "d")
    assert results[0].statistic == pytest.approx(float(np.sum((p - q) * np.log(p / q))), rel=1e-12)
    assert np.isfinite(results[0].statistic)


@pytest.mark.parametrize(("test", "statistic", "p", "drifted"), [
    (DriftTest("ks", 0.05), 0.3, 0.049, True), (DriftTest("ks", 0.05), 0.3, 0.05, False),
    (DriftTest("chi2", 0.01), 9.0, 0.02, False), (DriftTest("psi", 0.2), 0.2, None, True),
    (DriftTest("wasserstein", 0.1), 0.0999, None, False), (DriftTest("jensen_shannon", 0.1), 0.5, None, True),
])
def test_a_test_crosses_its_threshold_by_p_value_or_by_statistic(test: DriftTest, statistic: float,
                                                                 p: float | None, drifted: bool) -> None:
    assert drift_stats.verdict(test, statistic, p).drifted is drifted


def test_top_bins_keeps_the_shares_summing_to_one() -> None:
    bins = drift_stats.category_bins({str(i): i + 1 for i in range(20)}, {"0": 3})
    top = drift_stats.top_bins(bins, 5)
    assert len(top.labels) == 5 and top.labels[-1] == "(other)"
    assert sum(top.reference) == pytest.approx(1.0) and sum(top.current) == pytest.approx(1.0)
