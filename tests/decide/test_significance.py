"""Paired significance tests: checked against scipy (a test-only reference) and against their definitions."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mlops_bot.config.model import Significance
from mlops_bot.decide.significance import binomial, mcnemar, paired_bootstrap, significance_of
from mlops_bot.errors import DataError
from mlops_bot.metrics.files import PairedScores


def correctness(n: int, rate: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [1.0 if rng.random() < rate else 0.0 for _ in range(n)]


def discordant(b: int, c: int, agree: int = 50) -> tuple[list[float], list[float]]:
    """Rows where only the challenger is right (b), only the champion (c), both right (agree)."""
    return [1.0] * b + [0.0] * c + [1.0] * agree, [0.0] * b + [1.0] * c + [1.0] * agree


@pytest.mark.parametrize(("b", "c"), [(9, 1), (7, 3), (12, 2), (0, 5), (3, 3)])
def test_mcnemar_exact_matches_the_binomial_test(b: int, c: int) -> None:
    ours, theirs = discordant(b, c)
    result = mcnemar(ours, theirs, metric="accuracy", alpha=0.05)
    expected = stats.binomtest(b, b + c, 0.5).pvalue
    assert result.method == "exact binomial"
    assert result.p_value == pytest.approx(expected, rel=1e-12)
    assert result.significant == (expected < 0.05 and b > c)


def test_mcnemar_exact_example_and_wording() -> None:
    result = mcnemar(*discordant(9, 1), metric="accuracy", alpha=0.05)
    assert result.p_value == 22 / 1024
    assert result.reason == ("accuracy: the challenger is better on 9 rows and the champion on 1 of 60 paired rows "
                             "(McNemar, exact binomial, p = 0.0215): significant at alpha 0.05")
    worse = mcnemar(*discordant(1, 9), metric="accuracy", alpha=0.05)
    assert not worse.significant
    assert worse.reason.endswith("the challenger is not better on these rows, so there is no improvement to call "
                                 "significant")


def test_mcnemar_continuity_corrected_chi_square() -> None:
    result = mcnemar(*discordant(40, 22), metric="accuracy", alpha=0.05)
    assert result.method == "chi-square with continuity correction"
    assert result.statistic == pytest.approx(17**2 / 62)
    assert result.p_value == pytest.approx(stats.chi2.sf(17**2 / 62, 1), rel=1e-12)
    assert result.significant
    assert not mcnemar(*discordant(30, 22), metric="accuracy", alpha=0.05).significant


def test_mcnemar_agreement_everywhere_is_not_significant() -> None:
    result = mcnemar([1.0, 0.0, 1.0], [1.0, 0.0, 1.0], metric="accuracy", alpha=0.05)
    assert (result.p_value, result.significant) == (1.0, False)


def test_mcnemar_lower_is_better_counts_fewer_errors_as_better() -> None:
    errors_ours, errors_theirs = [0.0] * 15 + [1.0] * 2, [1.0] * 15 + [0.0] * 2
    assert mcnemar(errors_ours, errors_theirs, metric="error", alpha=0.05, greater_is_better=False).significant


def test_mcnemar_needs_zero_one_scores() -> None:
    with pytest.raises(DataError, match=r"mcnemar needs per-row scores of 0 or 1 .* found 0\.5; use test: paired_boot"):
        mcnemar([1.0, 0.5], [0.0, 1.0], metric="accuracy", alpha=0.05)


def test_bootstrap_is_reproducible_and_seeded() -> None:
    ours, theirs = correctness(2000, 0.91, 1), correctness(2000, 0.89, 2)
    first = paired_bootstrap(ours, theirs, Significance("accuracy", seed=7), greater_is_better=True)
    again = paired_bootstrap(ours, theirs, Significance("accuracy", seed=7), greater_is_better=True)
    other = paired_bootstrap(ours, theirs, Significance("accuracy", seed=8), greater_is_better=True)
    assert first == again
    assert (first.ci_low, first.ci_high) != (other.ci_low, other.ci_high)


@pytest.mark.parametrize("continuous", [False, True])
def test_bootstrap_interval_matches_the_normal_approximation(continuous: bool) -> None:
    """For a mean of 1,500 paired differences the percentile interval is close to mean +- 1.96 sd/sqrt(n)."""
    rng = random.Random(3)
    if continuous:
        theirs = [rng.gauss(0, 1) for _ in range(1500)]
        ours = [t + rng.gauss(0.05, 0.6) for t in theirs]
    else:
        ours, theirs = correctness(1500, 0.92, 4), correctness(1500, 0.90, 5)
    diffs = [a - b for a, b in zip(ours, theirs, strict=True)]
    mean = sum(diffs) / len(diffs)
    half = 1.96 * stats.tstd(diffs) / math.sqrt(len(diffs))
    result = paired_bootstrap(ours, theirs, Significance("m", resamples=4000), greater_is_better=True)
    assert result.observed == pytest.approx(mean)
    assert result.ci_low == pytest.approx(mean - half, abs=half * 0.08)
    assert result.ci_high == pytest.approx(mean + half, abs=half * 0.08)


def test_bootstrap_wording() -> None:
    ours, theirs = discordant(30, 5, agree=400)
    result = paired_bootstrap(ours, theirs, Significance("accuracy"), greater_is_better=True)
    assert result.significant
    assert result.reason.startswith("accuracy difference +0.05747 (challenger - champion) over 435 paired rows, "
                                    "95% CI [+")
    assert result.reason.endswith("]: significant at alpha 0.05")
    noise = paired_bootstrap(*discordant(6, 5, agree=400), Significance("accuracy"), greater_is_better=True)
    assert not noise.significant
    assert noise.reason.endswith("the interval includes no change, so the improvement is not significant at alpha 0.05")


def test_bootstrap_lower_is_better() -> None:
    rng = random.Random(9)
    theirs = [abs(rng.gauss(1.0, 0.3)) for _ in range(800)]
    ours = [t - 0.05 + rng.gauss(0, 0.05) for t in theirs]
    result = paired_bootstrap(ours, theirs, Significance("mae", resamples=2000), greater_is_better=False)
    assert result.significant and result.ci_high is not None and result.ci_high < 0
    flipped = paired_bootstrap(ours, theirs, Significance("mae", resamples=2000), greater_is_better=True)
    assert not flipped.significant


def test_ten_thousand_resamples_of_thousands_of_rows() -> None:
    ours, theirs = correctness(5000, 0.93, 11), correctness(5000, 0.90, 12)
    result = paired_bootstrap(ours, theirs, Significance("accuracy", resamples=10_000), greater_is_better=True)
    assert result.significant and result.n == 5000


def test_significance_of_uses_the_scores_own_direction() -> None:
    ours, theirs = discordant(40, 5)
    scores = PairedScores(tuple(ours), tuple(theirs), "per-row correctness (y_pred == y_true)", True)
    spec = Significance("error_rate", test="mcnemar")
    # error_rate is lower-is-better, but correctness scores are greater-is-better: the challenger is better
    assert significance_of(spec, scores, greater_is_better=False).significant
    spec = Significance("accuracy", resamples=500)
    assert significance_of(spec, scores, greater_is_better=True).method == "percentile bootstrap, 500 resamples, seed 0"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5)), min_size=1, max_size=40), st.booleans())
def test_bootstrap_invariants(pairs: list[tuple[float, float]], up: bool) -> None:
    ours, theirs = [a for a, _ in pairs], [b for _, b in pairs]
    r = paired_bootstrap(ours, theirs, Significance("m", alpha=0.1, resamples=200), greater_is_better=up)
    assert r.ci_low is not None and r.ci_high is not None
    assert r.ci_low <= r.ci_high + 1e-12
    lo, hi = min(a - b for a, b in pairs), max(a - b for a, b in pairs)
    assert lo - 1e-9 <= r.ci_low and r.ci_high <= hi + 1e-9
    if r.significant:
        assert (r.ci_low > 0) if up else (r.ci_high < 0)


@pytest.mark.parametrize(("n", "p"), [(5, 0.3), (60, 0.2), (3000, 0.04), (1, 0.5), (40, 0.97)])
def test_binomial_draws_follow_the_binomial_distribution(n: int, p: float) -> None:
    rng = random.Random(n)
    draws = 60_000
    counts = Counter(binomial(rng, n, p) for _ in range(draws))
    assert all(0 <= k <= n for k in counts)
    chi, cells = 0.0, 0
    for k in range(n + 1):
        expected = draws * stats.binom.pmf(k, n, p)
        if expected >= 20:
            chi += (counts[k] - expected) ** 2 / expected
            cells += 1
    # far above the 99.9th percentile of chi-square only if the sampler is wrong (seeded: deterministic)
    assert chi < stats.chi2.ppf(0.999, max(cells - 1, 1))


def test_binomial_edges() -> None:
    rng = random.Random(0)
    assert binomial(rng, 0, 0.5) == 0
    assert binomial(rng, 10, 0.0) == 0
    assert binomial(rng, 10, 1.0) == 10
