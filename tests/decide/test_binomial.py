"""decide/binomial gives scipy.stats.binomtest's p-values and exact interval at 1/2, edges included."""

from __future__ import annotations

import pytest
from scipy import stats

from mlops_bot.decide import binomial

CASES = [(k, n) for n in (1, 2, 3, 10, 25, 101, 1000) for k in sorted({0, 1, n // 2, (n + 1) // 2, n - 1, n})
         if 0 <= k <= n]


@pytest.mark.parametrize(("k", "n"), CASES)
def test_the_values_are_binomtests(k: int, n: int) -> None:
    reference = stats.binomtest(k, n, 0.5)
    assert binomial.p_greater(k, n) == pytest.approx(stats.binomtest(k, n, 0.5, alternative="greater").pvalue,
                                                     rel=1e-10, abs=1e-300)
    assert binomial.p_two_sided(k, n) == pytest.approx(reference.pvalue, rel=1e-10, abs=1e-300)
    for confidence in (0.9, 0.95):
        expected = reference.proportion_ci(confidence_level=confidence, method="exact")
        assert binomial.clopper_pearson(k, n, confidence) == pytest.approx((expected.low, expected.high), rel=1e-9,
                                                                           abs=1e-12)
