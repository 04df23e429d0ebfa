"""How often each rule cries drift on data that has none: two samples of one distribution, seeded, 200 times at
n = 1,000 and at n = 10,000, numeric and categorical, through the same code the check runs. ks and chi2 must
hold their level (the Wilson interval of the observed rate covers it); the distance rules at their default
thresholds must stay rare. `pytest -s` prints the table."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlops_bot.config.model import DriftTest
from mlops_bot.drift.stats import categorical_tests, numeric_tests

REPEATS = 200
SIZES = (1_000, 10_000)
NUMERIC = (DriftTest("ks", 0.05), DriftTest("ks", 0.01), DriftTest("wasserstein", 0.1), DriftTest("psi", 0.2))
CATEGORICAL = (DriftTest("chi2", 0.05), DriftTest("chi2", 0.01), DriftTest("jensen_shannon", 0.1),
               DriftTest("psi", 0.2))
SHARES = np.array([0.35, 0.25, 0.15, 0.12, 0.08, 0.05])
# the distance rules at their defaults: rare. wasserstein 0.1 is the closest to its noise at n = 1,000 (the mean
# normalised distance of two such samples is about 0.045): about 4% of checks there, none at n = 10,000
DISTANCE_CEILING = 0.06


def counts(rng: np.random.Generator, n: int) -> dict[str, int]:
    drawn = rng.multinomial(n, SHARES)
    return {f"c{i}": int(c) for i, c in enumerate(drawn) if c}


def alarm_rates(n: int) -> dict[str, list[int]]:
    rng = np.random.default_rng(20240518 + n)
    fired = {f"numeric {t.name} {t.threshold:g}": [0, 0] for t in NUMERIC}
    fired.update({f"categorical {t.name} {t.threshold:g}": [0, 0] for t in CATEGORICAL})
    for _ in range(REPEATS):
        numeric, _ = numeric_tests(rng.normal(0, 1, n), rng.normal(0, 1, n), NUMERIC)
        categorical, _ = categorical_tests(counts(rng, n), counts(rng, n), CATEGORICAL)
        for kind, results in (("numeric", numeric), ("categorical", categorical)):
            for result in results:
                fired[f"{kind} {result.name} {result.threshold:g}"][0] += result.drifted
                fired[f"{kind} {result.name} {result.threshold:g}"][1] += 1
    return fired


@pytest.mark.parametrize("n", SIZES)
def test_false_alarm_rates_on_data_with_no_drift(n: int) -> None:
    fired = alarm_rates(n)
    failures: list[str] = []
    print(f"\nfalse alarms in {REPEATS} checks of two samples of one distribution, n = {n:,} each")
    print(f"{'rule':34} {'alarms':>6} {'rate':>6} {'95% Wilson interval':>22}")
    for rule, (alarms, total) in fired.items():
        interval = stats.binomtest(alarms, total).proportion_ci(method="wilson")
        print(f"{rule:34} {alarms:6d} {alarms / total:6.3f}   [{interval.low:.3f}, {interval.high:.3f}]")
        name, threshold = rule.split()[1], float(rule.split()[2])
        if name in ("ks", "chi2"):
            # at its level: the interval reaches it, and the rate is not significantly above it
            failures.append(rule) if interval.high < threshold else None
            above = stats.binomtest(alarms, total, threshold, alternative="greater").pvalue
            failures.append(rule) if above < 0.001 else None
        elif alarms / total > DISTANCE_CEILING:
            failures.append(rule)
    assert failures == []


@pytest.mark.parametrize(("n_ref", "n_cur"), [(1_257, 200), (1_000, 1_000), (10_000, 10_000)])
def test_the_default_rule_of_a_feature_holds_the_level_of_its_test(n_ref: int, n_cur: int) -> None:
    """monitor's default: a feature drifts when its change is significant (ks, chi2 at p < 0.01) AND large
    (wasserstein, jensen_shannon >= 0.1). On data with no drift that is at most the test's level at every size,
    while a distance alone false-alarms on small batches (the quickstart's: 200 rows against 1,257)."""
    from mlops_bot.config.model import CurrentData, Monitor

    defaults = Monitor(current=CurrentData(path="current.csv"))
    rng = np.random.default_rng(7 + n_cur)
    both = {"numeric": 0, "categorical": 0}
    distance_alone = {"numeric": 0, "categorical": 0}
    for _ in range(REPEATS):
        numeric, _ = numeric_tests(rng.normal(0, 1, n_ref), rng.normal(0, 1, n_cur), defaults.numeric_tests)
        categorical, _ = categorical_tests(counts(rng, n_ref), counts(rng, n_cur), defaults.categorical_tests)
        for kind, results in (("numeric", numeric), ("categorical", categorical)):
            both[kind] += all(r.drifted for r in results)
            distance_alone[kind] += any(r.drifted for r in results if r.name not in ("ks", "chi2"))
    print(f"\ndefault rule, {REPEATS} checks, n = {n_ref:,} reference / {n_cur:,} current: significant and large "
          f"{both}, the distance alone {distance_alone}")
    for kind in both:
        assert stats.binomtest(both[kind], REPEATS, 0.01, alternative="greater").pvalue >= 0.001, kind
        assert both[kind] <= distance_alone[kind]
