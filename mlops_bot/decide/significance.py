"""Is the challenger better beyond noise? Paired tests of a metric's difference on both models' predictions.

What is tested: d = challenger - champion of the metric as defined (decide/measures.py: f1_macro from the
confusion matrices, rmse as the root of the mean square...), on the same rows. The alternative is one-sided by
default ("better": H1 says the challenger is better in the metric's direction, H0 that it is not), at the
declared alpha; "two-sided" doubles the smaller one-sided p. Either way only a difference in the better
direction is called significant. The direction comes from the caller (the metric's criterion, or
compare.significance.greater_is_better); a registry metric declared the other way round is refused.

McNemar, for accuracy-like metrics (the mean of a 0/1 per-row score: accuracy, error_rate, a 0/1 column): only the
discordant rows count, b where only the challenger is right (better), c where only the champion is. The test is the
exact binomial test of b among b + c at 1/2 (scipy.stats.binomtest's values, from scipy.special in
decide/binomial), at every size: it costs microseconds, never exceeds its level, and the continuity-corrected
chi-square only approximates it (within 0.0012 of p from b + c = 25 on: tests/decide/test_reference.py).
`statistic` is b. The interval is the Clopper-Pearson interval of b/(b + c) mapped to the difference (b + c)/n (2
pi - 1): it excludes 0 exactly when the test rejects. MDE uses the standard error of the paired difference of
proportions, sqrt((pb + pc - (pb - pc)^2)/n) with pb = b/n, pc = c/n.

Bootstrap, for every other metric (test "auto"), or any metric (test "paired_bootstrap"): `resamples` resamples
of the rows, the same rows for both models and y_true (numpy's default_rng(seed): row indices in batches, or
counts of each kind of row when few kinds repeat: decide/kernels.resample), the metric difference recomputed on
each. The interval is BCa (bias-corrected and accelerated), computed as scipy.stats.bootstrap(method="BCa",
rng=seed, batch=...) computes it, to the same values on the same resamples (test_reference.py): z0 from the "mean"
percentile of the estimate, the jackknife acceleration, linear quantiles; only the jackknife comes from
sufficient statistics in O(n) rather than n recomputations (decide/kernels.py). BCa rather than percentile: it
corrects the bias and skew of metrics that are not plain means (F1, RMSE, AUC), with second-order accurate
coverage. The p-value is the BCa interval inverted: p = Phi(g / (1 + a g) - z0), g = Phi^-1(G) - z0, G = (k + 1)/
(B + 1) with k the resamples showing no improvement (d <= 0 in the better direction): the smallest alpha whose
BCa bound excludes 0, so p and the interval agree; with no bias and no acceleration it is the plain (k + 1)/(B +
1), and it is never below 1/(B + 1). When BCa is undefined (the estimate outside the resamples, no spread) the
percentile interval and p are used, and `method` says so. MDE: (z_(1-alpha) + z_0.8) x the bootstrap standard
error (z_(1-alpha/2) when two-sided). Cost: 10,000 resamples of f1_macro on 3,000 rows of 10 classes take ~0.5 s;
a multi-class AUC costs B x n x classes (~4 s for those rows).

Accuracy under "paired_bootstrap" with fewer than 25 discordant rows defers to the exact McNemar test, and
`method` says so: so few rows make the bootstrap distribution a handful of values, and it calls 4-0 out of 1,000
rows significant where the exact one-sided p is 0.0625.

Several metrics (`test_all`): with correction "holm", Holm's step-down adjustment of their p-values; each is
significant when its adjusted p <= alpha. `resolution` is 1/n for accuracy-like metrics (one row), else None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config.model import Significance
from ..errors import DataError
from ..metrics.numbers import fmt, fmt_signed
from ..metrics.predictions import PairedRows
from . import binomial
from .decision import Alternative, SignificanceResult, SignificanceTest
from .kernels import Kernel, resample
from .measures import prepare

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Array = NDArray[Any]

EXACT_BELOW = 25  # discordant rows under which the bootstrap of an accuracy-like metric defers to exact McNemar
POWER = 0.8
TESTS = ("auto", "mcnemar", "paired_bootstrap")
ALTERNATIVES: tuple[Alternative, ...] = ("better", "two-sided")


@dataclass(frozen=True)
class Found:
    """One metric's test before the verdict (and Holm's adjustment) is added."""

    metric: str
    test: SignificanceTest
    method: str
    n: int
    observed: float  # challenger - champion
    levels: tuple[float, float]  # challenger, champion
    p: float
    interval: tuple[float, float] | None  # of challenger - champion
    mde: float | None
    resolution: float | None
    statistic: float | None = None
    detail: str = ""


def test_metric(spec: Significance, rows: PairedRows, metric: str, greater_is_better: bool) -> SignificanceResult:
    """One metric's test, judged on its own p-value."""
    return _result(spec, measure(spec, rows, metric, greater_is_better), greater_is_better, None, 1)


def test_all(spec: Significance, rows: PairedRows, directions: Mapping[str, bool]) -> tuple[SignificanceResult, ...]:
    """Every metric of `spec`, in order; Holm-adjusted when `spec.correction` is "holm" and there are several."""
    missing = [m for m in spec.metrics if m not in directions]
    if missing:
        raise DataError(f"significance: no direction (greater_is_better) was given for {', '.join(missing)}.")
    found = [measure(spec, rows, m, directions[m]) for m in spec.metrics]
    adjusted: Sequence[float | None] = [None] * len(found)
    if spec.correction == "holm" and len(found) > 1:
        adjusted = holm([f.p for f in found])
    return tuple(_result(spec, f, directions[f.metric], a, len(found)) for f, a in zip(found, adjusted, strict=True))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order."""
    m = len(p_values)
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: p_values[j])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def measure(spec: Significance, rows: PairedRows, metric: str, greater_is_better: bool) -> Found:
    """The test `spec` asks for on `metric` (see the module's docstring for which test runs when)."""
    if spec.test not in TESTS or spec.alternative not in ALTERNATIVES:
        raise DataError(f"significance: test must be one of {', '.join(TESTS)} and alternative one of "
                        f"{', '.join(ALTERNATIVES)}; got {spec.test!r} and {spec.alternative!r}.")
    definition, kernel = prepare(metric, rows)
    if definition.greater_is_better is not None and definition.greater_is_better != greater_is_better:
        said, truth = ("higher", "lower") if greater_is_better else ("lower", "higher")
        raise DataError(f"significance: {metric} is {truth}-is-better by definition, but ml.yaml says {said} is "
                        f"better for it (greater_is_better: {str(greater_is_better).lower()}); fix its criterion "
                        "or compare.significance.greater_is_better.")
    sign = 1.0 if greater_is_better else -1.0
    zero_one = kernel.per_row if definition.accuracy_like or definition.needs == "column" else None
    if spec.test == "mcnemar" and zero_one is None:
        raise DataError(f"significance: mcnemar tests 0/1 per-row correctness (accuracy), but {metric} is not the "
                        "mean of 0/1 per-row values; use test: paired_bootstrap (or auto) for it.")
    if zero_one is not None and spec.test != "paired_bootstrap":
        return mcnemar_test(spec, metric, zero_one, sign)
    if zero_one is not None:
        discordant = int((zero_one[0] != zero_one[1]).sum())
        if discordant < EXACT_BELOW:
            return mcnemar_test(spec, metric, zero_one, sign, deferred=discordant)
    return bootstrap_test(spec, metric, kernel, sign, 1 / kernel.n if zero_one is not None else None)


def mcnemar(challenger: Sequence[float], champion: Sequence[float], *, metric: str, alpha: float,
            greater_is_better: bool = True, alternative: Alternative = "better") -> SignificanceResult:
    """The exact McNemar test on per-row 0/1 scores (1 = right, for greater-is-better)."""
    import numpy as np

    pair = (np.asarray(challenger, dtype=np.float64), np.asarray(champion, dtype=np.float64))
    if any(not set(values.tolist()) <= {0.0, 1.0} for values in pair):
        raise DataError(f"significance: mcnemar needs per-row scores of 0 or 1 for {metric!r}.")
    spec = Significance((metric,), test="mcnemar", alpha=alpha, alternative=alternative)
    found = mcnemar_test(spec, metric, pair, 1.0 if greater_is_better else -1.0)
    return _result(spec, found, greater_is_better, None, 1)


def mcnemar_test(spec: Significance, metric: str, pair: tuple[Array, Array], sign: float,
                 deferred: int | None = None) -> Found:
    n = len(pair[0])
    better = sign * (pair[0] - pair[1])
    b, c = int((better > 0).sum()), int((better < 0).sum())
    m, tail = b + c, _tail(spec)
    ours, theirs = float(pair[0].mean()), float(pair[1].mean())
    p, interval = 1.0, None
    if m:
        p = binomial.p_greater(b, m) if spec.alternative == "better" else binomial.p_two_sided(b, m)
        low, high = binomial.clopper_pearson(b, m, 1 - 2 * tail)
        interval = _raw(m / n * (2 * low - 1), m / n * (2 * high - 1), sign)
    pb, pc = b / n, c / n
    se = math.sqrt(max(pb + pc - (pb - pc) ** 2, 0.0) / n)
    method = "exact binomial McNemar" + ("" if deferred is None else f", as the bootstrap needs {EXACT_BELOW} "
                                         f"discordant rows and has {deferred}")
    return Found(metric, "mcnemar", method, n, ours - theirs, (ours, theirs), min(p, 1.0), interval,
                 _mde(se, tail), 1 / n, float(b),
                 f"the challenger alone is better on {b} rows and the champion alone on {c}")


def bootstrap_test(spec: Significance, metric: str, kernel: Kernel, sign: float,
                   resolution: float | None) -> Found:
    import numpy as np

    n, total = kernel.n, spec.resamples
    if n < 2 or total < 1:
        raise DataError(f"significance: the bootstrap of {metric} needs at least 2 paired rows and 1 resample "
                        f"(got {n} rows, {total} resamples).")
    theta = resample(kernel, np.random.default_rng(spec.seed), total)
    estimate = float(kernel.diffs(np.arange(n)[None, :])[0])
    finite = theta[np.isfinite(theta)]
    if not math.isfinite(estimate) or len(finite) < total / 2:
        raise DataError(f"significance: {metric} is undefined on these rows or on most resamples of them (e.g. an "
                        "AUC with too few positives); test another metric or give more rows.")
    jack = sign * kernel.jackknife()
    p, low, high, kind = bca(sign * finite, sign * estimate, jack[np.isfinite(jack)], _tail(spec), spec.alternative)
    method = f"{kind} bootstrap, {total} resamples, seed {spec.seed}"
    if len(finite) < total:
        method += f" ({total - len(finite)} resamples on which {metric} is undefined left out)"
    ours, theirs = kernel.levels()
    se = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
    return Found(metric, "paired_bootstrap", method, n, estimate, (ours, theirs), p, _raw(low, high, sign),
                 _mde(se, _tail(spec)), resolution)


def bca(d: Array, estimate: float, jack: Array, tail: float, alternative: str) -> tuple[float, float, float, str]:
    """(p, low, high, "BCa" or "percentile") for resamples `d` of a difference whose improvement is d > 0."""
    import numpy as np

    count = len(d)
    share = (np.count_nonzero(d < estimate) + np.count_nonzero(d <= estimate)) / (2 * count)
    spread = jack.mean() - jack
    scale = float((spread**2).sum())
    accel = float((spread**3).sum()) / (6 * scale**1.5) if scale > 0 else 0.0
    kind = "BCa"
    if not 0 < share < 1 or not math.isfinite(accel):
        kind, z0, accel = "percentile", 0.0, 0.0
    else:
        z0 = _z(share)
    bounds = [_phi(z0 + w / (1 - accel * w)) for w in (z0 + _z(tail), z0 - _z(tail))]
    low, high = (float(q) for q in np.quantile(d, bounds))
    better = _inverted(int(np.count_nonzero(d <= 0)), count, z0, accel)
    p = better
    if alternative == "two-sided":
        p = min(1.0, 2 * min(better, _inverted(int(np.count_nonzero(d >= 0)), count, -z0, -accel)))
    return max(p, 1 / (count + 1)), low, high, kind


def _inverted(k: int, count: int, z0: float, accel: float) -> float:
    """The smallest alpha at which the BCa lower bound exceeds 0, with G(0) = (k + 1)/(count + 1)."""
    share = (k + 1) / (count + 1)
    if share >= 1:
        return 1.0
    g = _z(share) - z0
    if 1 + accel * g <= 0:
        return 0.0 if g < 0 else 1.0
    return _phi(g / (1 + accel * g) - z0)


def _z(p: float) -> float:
    from statistics import NormalDist  # here: its import pulls in decimal and fractions

    return NormalDist().inv_cdf(p)


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _tail(spec: Significance) -> float:
    return spec.alpha if spec.alternative == "better" else spec.alpha / 2


def _mde(se: float, tail: float) -> float | None:
    return (_z(1 - tail) + _z(POWER)) * se if se > 0 else None


def _raw(low: float, high: float, sign: float) -> tuple[float, float]:
    """An interval of the improvement (d in the better direction) as one of challenger - champion."""
    return (low, high) if sign > 0 else (-high, -low)


def _result(spec: Significance, found: Found, greater_is_better: bool, adjusted: float | None,
            tested: int) -> SignificanceResult:
    judged = found.p if adjusted is None else adjusted
    better = (found.observed > 0) == greater_is_better and found.observed != 0
    significant = better and judged <= spec.alpha
    alternative: Alternative = "two-sided" if spec.alternative == "two-sided" else "better"
    return SignificanceResult(
        metric=found.metric, test=found.test, method=found.method, alpha=spec.alpha, n=found.n,
        observed=found.observed, significant=significant,
        reason=_reason(spec, found, greater_is_better, adjusted, tested), statistic=found.statistic,
        p_value=found.p, ci_low=found.interval[0] if found.interval else None,
        ci_high=found.interval[1] if found.interval else None, greater_is_better=greater_is_better,
        alternative=alternative, adjusted_p=adjusted, mde=found.mde, resolution=found.resolution,
    )


def _reason(spec: Significance, found: Found, greater_is_better: bool, adjusted: float | None, tested: int) -> str:
    sided = "one-sided" if spec.alternative == "better" else "two-sided"
    parts = [f"{found.metric} {fmt_signed(found.observed)} (challenger {fmt(found.levels[0])}, champion "
             f"{fmt(found.levels[1])}) over {found.n} paired rows"]
    if found.detail:
        parts.append(found.detail)
    if found.interval is not None:
        level = fmt(100 * (1 - 2 * _tail(spec)))
        parts.append(f"{level}% interval [{fmt_signed(found.interval[0])}, {fmt_signed(found.interval[1])}]")
    parts.append(f"p = {fmt(found.p, 3)} {sided} ({found.method})"
                 + (f", Holm-adjusted for {tested} metrics {fmt(adjusted, 3)}" if adjusted is not None else ""))
    if found.mde is not None:
        parts.append(f"minimum detectable effect {fmt(found.mde, 3)} at 80% power")
    judged = found.p if adjusted is None else adjusted
    alpha = fmt(spec.alpha)
    if (found.observed > 0) != greater_is_better or found.observed == 0:
        way = "higher" if greater_is_better else "lower"
        worse = " and significantly worse" if spec.alternative == "two-sided" and judged <= spec.alpha else ""
        tail = f"the challenger is not better ({way} is better){worse}, so there is no improvement to call significant"
    elif judged <= spec.alpha:
        tail = f"significant at alpha {alpha}"
    else:
        tail = f"not significant at alpha {alpha}: the improvement is within the noise"
    return "; ".join(parts) + ": " + tail
