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
