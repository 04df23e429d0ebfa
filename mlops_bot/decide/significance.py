"""Is the challenger's improvement real? Paired tests on per-row scores of both models. Pure, stdlib only.

- `paired_bootstrap`: resample the rows with replacement `resamples` times (seeded `random.Random`, so a
  verdict is reproducible), take the mean per-row difference (challenger - champion) of each resample, and
  read the two-sided (1 - alpha) percentile interval. The improvement is significant when the whole interval
  lies on the better side of 0 (above for greater-is-better scores, below otherwise). The metric must be the
  mean of its per-row scores (accuracy from 0/1 correctness, MAE, MSE...); for others, write a per-row column.
- `mcnemar`: for 0/1 scores (correct or not). Only the discordant rows count: b where only the challenger is
  right, c where only the champion is. Exact two-sided binomial test when b + c < 25, else the chi-square
  statistic with continuity correction, (|b - c| - 1)^2 / (b + c). Significant when p < alpha and b > c.

Cost of the bootstrap: a resample's mean depends only on how many times each distinct difference is drawn, a
multinomial draw done as one binomial per distinct value. Accuracy-like scores have at most 3 distinct
differences (-1, 0, +1), so 10,000 resamples of any number of rows take well under a second. Continuous
scores (many distinct differences) resample row by row: about 2 s for 10,000 x 3,000 rows on one core.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

from ..config.model import Significance
from ..errors import DataError
from ..metrics.files import PairedScores
from ..metrics.numbers import fmt, fmt_signed
from .decision import SignificanceResult

EXACT_BELOW = 25  # discordant pairs under which McNemar uses the exact binomial test


def significance_of(spec: Significance, scores: PairedScores, greater_is_better: bool) -> SignificanceResult:
    """Runs the configured test; `greater_is_better` is the metric's, used when the scores carry no direction."""
    up = scores.greater_is_better if scores.greater_is_better is not None else greater_is_better
    if not scores.challenger:
        raise DataError("significance: the predictions files hold no rows to compare.")
    if spec.test == "mcnemar":
        return mcnemar(scores.challenger, scores.champion, metric=spec.metric, alpha=spec.alpha, greater_is_better=up)
    return paired_bootstrap(scores.challenger, scores.champion, spec, greater_is_better=up)


def paired_bootstrap(challenger: Sequence[float], champion: Sequence[float], spec: Significance, *,
                     greater_is_better: bool) -> SignificanceResult:
    """The bootstrap with `spec`'s metric, alpha, resamples and seed (its `test` is not consulted)."""
    metric, alpha, resamples, seed = spec.metric, spec.alpha, spec.resamples, spec.seed
    diffs = [a - b for a, b in zip(challenger, champion, strict=True)]
    n = len(diffs)
    observed = math.fsum(diffs) / n
    means = sorted(_resample_means(diffs, resamples, random.Random(seed)))
    low, high = _quantile(means, alpha / 2), _quantile(means, 1 - alpha / 2)
    better = low > 0 if greater_is_better else high < 0
    level = f"{fmt(100 * (1 - alpha))}%"
    head = (f"{metric} difference {fmt_signed(observed)} (challenger - champion) over {n} paired rows, "
            f"{level} CI [{fmt_signed(low)}, {fmt_signed(high)}]")
    if better:
        tail = f"significant at alpha {fmt(alpha)}"
    elif (observed > 0) == greater_is_better and observed != 0:
        tail = f"the interval includes no change, so the improvement is not significant at alpha {fmt(alpha)}"
    else:
        tail = "the challenger is not better on these rows, so there is no improvement to call significant"
    return SignificanceResult(
        metric=metric, test="paired_bootstrap", method=f"percentile bootstrap, {resamples} resamples, seed {seed}",
        alpha=alpha, n=n, observed=observed, significant=better, reason=f"{head}: {tail}",
        ci_low=low, ci_high=high,
    )


def mcnemar(challenger: Sequence[float], champion: Sequence[float], *, metric: str, alpha: float,
            greater_is_better: bool = True) -> SignificanceResult:
    for value in (*challenger, *champion):
        if value not in (0.0, 1.0):
            raise DataError(f"significance: mcnemar needs per-row scores of 0 or 1 (wrong or right) for {metric!r}, "
                            f"found {fmt(value)}; use test: paired_bootstrap for this metric.")
    good = 1.0 if greater_is_better else 0.0
    b = sum(1 for x, y in zip(challenger, champion, strict=True) if x == good != y)
    c = sum(1 for x, y in zip(challenger, champion, strict=True) if y == good != x)
    n = len(challenger)
    observed = (math.fsum(challenger) - math.fsum(champion)) / n
    if b + c < EXACT_BELOW:
        statistic, p, method = float(min(b, c)), _exact_two_sided(b, c), "exact binomial"
    else:
        statistic = (abs(b - c) - 1) ** 2 / (b + c)
        p, method = math.erfc(math.sqrt(statistic / 2)), "chi-square with continuity correction"
    significant = p < alpha and b > c
    head = (f"{metric}: the challenger is better on {b} rows and the champion on {c} of {n} paired rows "
            f"(McNemar, {method}, p = {fmt(p, 3)})")
    if significant:
        tail = f"significant at alpha {fmt(alpha)}"
    elif b > c:
        tail = f"the improvement is not significant at alpha {fmt(alpha)}"
    else:
        tail = "the challenger is not better on these rows, so there is no improvement to call significant"
    return SignificanceResult(metric=metric, test="mcnemar", method=method, alpha=alpha, n=n, observed=observed,
                              significant=significant, reason=f"{head}: {tail}", statistic=statistic, p_value=p)


def _exact_two_sided(b: int, c: int) -> float:
    m = b + c
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / (1 << m))


def _resample_means(diffs: Sequence[float], resamples: int, rng: random.Random) -> list[float]:
    n = len(diffs)
    counts = Counter(diffs)
    if len(counts) * (2 * math.sqrt(n) + 10) < n:
        values = sorted(counts)  # sorted: the draw order must not depend on the input's row order
        sizes = [counts[v] for v in values]
        return [_multinomial_sum(values, sizes, n, rng) / n for _ in range(resamples)]
    pick = rng.choices
    return [sum(pick(diffs, k=n)) / n for _ in range(resamples)]


def _multinomial_sum(values: Sequence[float], sizes: Sequence[int], n: int, rng: random.Random) -> float:
    """Sum of n draws with replacement from a population with `sizes[j]` copies of `values[j]`."""
    total, left, pool = 0.0, n, n
    for value, size in zip(values[:-1], sizes[:-1], strict=True):
        drawn = binomial(rng, left, size / pool)
        total += value * drawn
        left -= drawn
        pool -= size
    return total + values[-1] * left


def binomial(rng: random.Random, n: int, p: float) -> int:
    """An exact Binomial(n, p) draw by inversion, walking outwards from the mode: about 1.6 standard
    deviations of steps per draw, so cheap for any n (random.binomialvariate is Python 3.12+)."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    q = 1.0 - p
    mode = min(n, int((n + 1) * p))
    pmf = math.exp(math.lgamma(n + 1) - math.lgamma(mode + 1) - math.lgamma(n - mode + 1)
                   + mode * math.log(p) + (n - mode) * math.log(q))
    u = rng.random() - pmf
    lo = hi = mode
    p_lo = p_hi = pmf
    while u >= 0:
        if hi == n and lo == 0:
            return mode  # rounding left a sliver of probability unassigned
        if hi < n:
            p_hi *= (n - hi) / (hi + 1) * p / q
            hi += 1
            u -= p_hi
            if u < 0:
                return hi
        if lo > 0:
            p_lo *= lo / (n - lo + 1) * q / p
            lo -= 1
            u -= p_lo
    return lo


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (the common 'type 7' definition)."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
