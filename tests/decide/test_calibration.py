"""Does "significant" mean what it says? Simulated comparisons through the engine's public entry point.

A/A: both models have the same true accuracy (0.8), so every "significant" is a false positive; its rate must stay
at or under alpha (the Wilson 95% interval of the simulated rate reaches down to alpha or below), for
- independent errors (the models err on unrelated rows),
- correlated errors (half the rows: the challenger repeats the champion's outcome),
- nested errors (the challenger repeats the champion but on ~3% of rows, as many fixed as broken: few
  discordant rows, where a naive bootstrap calls noise significant),
on 100 and 1,000 rows, for test "auto" (exact McNemar) and "paired_bootstrap" (BCa, deferring to exact McNemar
under 25 discordant rows), and for f1_macro (bootstrap). Then the power on a true +3% accuracy improvement on
1,000 rows, for both tests, beside the normal approximation of McNemar's power: run with -s to see the table.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from mlops_bot.config.model import Significance
from mlops_bot.decide import significance as sig
from mlops_bot.metrics.predictions import ModelRows, PairedRows

pytestmark = pytest.mark.slow  # about 25 s: thousands of simulated comparisons

SIMS = 400
RESAMPLES = 999  # fewer than the default 10,000: enough for a p-value near 0.05, and 10x faster
ACCURACY, DISCORDANT, ALPHA = 0.8, 0.03, 0.05
KINDS = ("independent", "correlated", "nested")


def correctness(rng: np.random.Generator, n: int, kind: str, lift: float) -> tuple[np.ndarray, np.ndarray]:
    """(challenger right, champion right) per row; the challenger's true accuracy is ACCURACY + lift."""
    champion = rng.random(n) < ACCURACY
    if kind == "independent":
        return rng.random(n) < ACCURACY + lift, champion
    if kind == "correlated":
        return np.where(rng.random(n) < 0.5, champion, rng.random(n) < ACCURACY + 2 * lift), champion
    u = rng.random(n)  # nested: break DISCORDANT/2 of the rows, fix as many (+ lift)
    broken, fixed = DISCORDANT / 2 / ACCURACY, (DISCORDANT / 2 + lift) / (1 - ACCURACY)
    return np.where(champion, u >= broken, u < fixed), champion


def rows_of(challenger: np.ndarray, champion: np.ndarray) -> PairedRows:
    n = len(challenger)
    def model(right: np.ndarray) -> ModelRows:
        return ModelRows(Path("p.csv"), tuple("1" if r else "0" for r in right))
    return PairedRows(tuple(str(i) for i in range(n)), ("1",) * n, model(challenger), model(champion))


def rate(kind: str, n: int, test: str, lift: float) -> tuple[int, float]:
    """(significant results out of SIMS, the Wilson 95% interval's low end)."""
    rng = np.random.default_rng([KINDS.index(kind), n, int(lift * 1000)])
    spec = Significance(("accuracy",), test=test, alpha=ALPHA, resamples=RESAMPLES)
    hits = sum(sig.test_metric(spec, rows_of(*correctness(rng, n, kind, lift)), "accuracy", True).significant
               for _ in range(SIMS))
    return hits, stats.binomtest(hits, SIMS).proportion_ci(method="wilson").low


@pytest.mark.parametrize("test", ["auto", "paired_bootstrap"])
@pytest.mark.parametrize("n", [100, 1000])
@pytest.mark.parametrize("kind", KINDS)
def test_a_a_comparisons_are_significant_at_most_alpha_of_the_time(kind: str, n: int, test: str) -> None:
    hits, low = rate(kind, n, test, 0.0)
    print(f"\nA/A {kind:<11} {n:>5} rows {test:<16} significant {hits / SIMS:.4f} (Wilson low {low:.4f})")
    assert low <= ALPHA


@pytest.mark.parametrize("n", [100, 1000])
def test_a_a_f1_macro_is_significant_at_most_alpha_of_the_time(n: int) -> None:
    rng = np.random.default_rng(n)
    spec = Significance(("f1_macro",), alpha=ALPHA, resamples=RESAMPLES)
    hits = 0
    for _ in range(SIMS):
        truth = rng.integers(0, 3, n)
        ours, theirs = (np.where(rng.random(n) < 0.7, truth, rng.integers(0, 3, n)) for _ in range(2))
        rows = PairedRows(tuple(str(i) for i in range(n)), tuple(map(str, truth)),
                          ModelRows(Path("a"), tuple(map(str, ours))), ModelRows(Path("b"), tuple(map(str, theirs))))
        hits += sig.test_metric(spec, rows, "f1_macro", True).significant
    low = stats.binomtest(hits, SIMS).proportion_ci(method="wilson").low
    print(f"\nA/A f1_macro {n:>5} rows bootstrap significant {hits / SIMS:.4f} (Wilson low {low:.4f})")
    assert low <= ALPHA


def mcnemar_power(kind: str, n: int, lift: float) -> float:
    """The normal approximation of the one-sided McNemar test's power, from the discordant proportions."""
    a, b = ACCURACY, ACCURACY + lift
    pb, pc = {"independent": (b * (1 - a), a * (1 - b)),
              "correlated": (0.5 * (a + 2 * lift) * (1 - a), 0.5 * a * (1 - a - 2 * lift)),
              "nested": (DISCORDANT / 2 + lift, DISCORDANT / 2)}[kind]
    se = math.sqrt((pb + pc - (pb - pc) ** 2) / n)
    return float(stats.norm.cdf((pb - pc) / se - stats.norm.ppf(1 - ALPHA)))


def test_power_on_a_true_three_point_improvement_on_a_thousand_rows() -> None:
    lines = ["", f"power on +3% accuracy ({ACCURACY} -> {ACCURACY + 0.03:.2f}), 1000 rows, alpha {ALPHA} one-sided, "
                 f"{SIMS} simulations:", f"{'errors':<12} {'exact McNemar':>14} {'bootstrap':>10} {'theory':>8}"]
    for kind in KINDS:
        exact, _ = rate(kind, 1000, "auto", 0.03)
        boot, _ = rate(kind, 1000, "paired_bootstrap", 0.03)
        theory = mcnemar_power(kind, 1000, 0.03)
        lines.append(f"{kind:<12} {exact / SIMS:>14.3f} {boot / SIMS:>10.3f} {theory:>8.3f}")
        assert abs(exact / SIMS - theory) < 0.08 and abs(boot / SIMS - theory) < 0.08
    print("\n".join(lines))
