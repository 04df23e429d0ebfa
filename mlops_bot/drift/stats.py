"""The drift tests, each a call into scipy (no distribution code of our own), on the non-null values of a feature.

Numeric: `ks` (scipy.stats.ks_2samp), `wasserstein` (scipy.stats.wasserstein_distance over the reference's
standard deviation, so that one threshold fits every scale), `psi` over the reference's deciles. Categorical:
`chi2` (scipy.stats.chi2_contingency on the 2 x k table of counts), `jensen_shannon`
(scipy.spatial.distance.jensenshannon, base 2: 0 same, 1 disjoint), `psi` over the categories.

PSI = sum((p - q) ln(p / q)) is the symmetrised Kullback-Leibler divergence, computed as
scipy.stats.entropy(p, q) + scipy.stats.entropy(q, p). Empty bins get a floor share (PSI_FLOOR, then the shares
are normalised again) so that a category or bin seen on one side only counts as a large term, not as infinity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ..config.model import DriftTest

PSI_FLOOR = 1e-4
DECILES = 10
NUMERIC_TESTS = ("ks", "wasserstein", "psi")
CATEGORICAL_TESTS = ("chi2", "jensen_shannon", "psi")


@dataclass(frozen=True)
class TestResult:
    """One test of one feature: its statistic, p-value (ks and chi2 only), threshold and verdict."""

    __test__ = False  # not a pytest class, whatever its name

    name: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class Bins:
    """The shares of both samples per bin (numeric: the reference's deciles) or per category: PSI's input and
    the data of the report's chart."""

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]


def verdict(test: DriftTest, statistic: float, p_value: float | None) -> TestResult:
    """ks and chi2 drift when p < threshold; the distances when the statistic is at or above it."""
    drifted = (p_value is not None and p_value < test.threshold) if test.is_p_value else statistic >= test.threshold
    return TestResult(test.name, float(statistic), None if p_value is None else float(p_value), test.threshold,
                      drifted)


def ks(reference: Any, current: Any) -> tuple[float, float]:
    from scipy import stats

    found = stats.ks_2samp(reference, current)
    return float(found.statistic), float(found.pvalue)


def wasserstein(reference: Any, current: Any) -> float:
    """The Wasserstein distance in units of the reference's standard deviation; a constant reference is
    measured against its own magnitude (or in absolute terms when it is 0)."""
    import numpy as np
    from scipy import stats

    distance = float(stats.wasserstein_distance(reference, current))
    scale = float(np.std(reference))
    if scale == 0.0:
        scale = abs(float(np.mean(reference))) or 1.0
    return distance / scale


def decile_edges(reference: Any) -> Any:
    """Bin edges at the reference's deciles, the outer ones open (current values beyond the reference's range
    fall in the first or last bin); repeated quantiles (a discrete feature) merge their bins."""
    import numpy as np

    inner = np.unique(np.quantile(reference, np.linspace(0, 1, DECILES + 1)[1:-1]))
    return np.concatenate([[-np.inf], inner, [np.inf]])


def numeric_bins(reference: Any, current: Any) -> Bins:
    import numpy as np

    edges = decile_edges(reference)
    ref_counts, _ = np.histogram(reference, bins=edges)
    cur_counts, _ = np.histogram(current, bins=edges)
    labels = tuple(_bin_label(low, high) for low, high in pairwise(edges))
    return Bins(labels, _shares(ref_counts), _shares(cur_counts))


def category_bins(reference: Mapping[str, int], current: Mapping[str, int]) -> Bins:
    """Both samples' shares over every category either has (the reference's most common first)."""
    order = sorted(set(reference) | set(current), key=lambda c: (-reference.get(c, 0), -current.get(c, 0), c))
    return Bins(tuple(order), _shares([reference.get(c, 0) for c in order]),
                _shares([current.get(c, 0) for c in order]))


def top_bins(bins: Bins, limit: int) -> Bins:
    """The first `limit` categories as they are and the rest summed as one "(other)" bin (for a chart)."""
    if len(bins.labels) <= limit:
        return bins
    cut = limit - 1
    return Bins((*bins.labels[:cut], "(other)"), (*bins.reference[:cut], sum(bins.reference[cut:])),
                (*bins.current[:cut], sum(bins.current[cut:])))


def psi(bins: Bins) -> float:
    from scipy import stats

    p, q = floored(bins.reference), floored(bins.current)
    return float(stats.entropy(p, q) + stats.entropy(q, p))


def floored(shares: Sequence[float]) -> Any:
    """Shares with PSI_FLOOR in place of the empty bins, normalised again to sum to 1."""
    import numpy as np

    raised = np.maximum(np.asarray(shares, dtype=np.float64), PSI_FLOOR)
    return raised / raised.sum()


def chi2(reference: Mapping[str, int], current: Mapping[str, int]) -> tuple[float, float]:
    """The chi-square test of homogeneity of the 2 x k table of counts; one category on both sides has
    nothing to test (statistic 0, p 1)."""
    import numpy as np
    from scipy import stats

    categories = sorted(set(reference) | set(current))
    if len(categories) < 2:
        return 0.0, 1.0
    table = np.array([[reference.get(c, 0) for c in categories], [current.get(c, 0) for c in categories]])
    found = stats.chi2_contingency(table)
    return float(found.statistic), float(found.pvalue)


def jensen_shannon(reference: Mapping[str, int], current: Mapping[str, int]) -> float:
    import numpy as np
    from scipy.spatial import distance

    categories = sorted(set(reference) | set(current))
    p = np.array([reference.get(c, 0) for c in categories], dtype=np.float64)
    q = np.array([current.get(c, 0) for c in categories], dtype=np.float64)
    return float(distance.jensenshannon(p, q, base=2))


def numeric_tests(reference: Any, current: Any, tests: Sequence[DriftTest]) -> tuple[tuple[TestResult, ...], Bins]:
    """Every configured numeric test on two arrays of finite values (sorted once here: scipy sorts again, and
    sorting sorted data is quick)."""
    import numpy as np

    reference, current = np.sort(reference), np.sort(current)
    bins = numeric_bins(reference, current)
    results = []
    for test in tests:
        if test.name == "ks":
            results.append(verdict(test, *ks(reference, current)))
        elif test.name == "wasserstein":
            results.append(verdict(test, wasserstein(reference, current), None))
        elif test.name == "psi":
            results.append(verdict(test, psi(bins), None))
    return tuple(results), bins


def categorical_tests(reference: Mapping[str, int], current: Mapping[str, int],
                      tests: Sequence[DriftTest]) -> tuple[tuple[TestResult, ...], Bins]:
    bins = category_bins(reference, current)
    results = []
    for test in tests:
        if test.name == "chi2":
            results.append(verdict(test, *chi2(reference, current)))
        elif test.name == "jensen_shannon":
            results.append(verdict(test, jensen_shannon(reference, current), None))
        elif test.name == "psi":
            results.append(verdict(test, psi(bins), None))
    return tuple(results), bins


def _shares(counts: Sequence[int] | Any) -> tuple[float, ...]:
    total = float(sum(counts))
    return tuple(float(c) / total if total else 0.0 for c in counts)


def _bin_label(low: float, high: float) -> str:
    # words, not < and >=: a Mermaid label keeps no markup characters (report/escape.mermaid)
    if low == float("-inf"):
        return f"below {high:.4g}"
    if high == float("inf"):
        return f"{low:.4g} and up"
    return f"{low:.4g} to {high:.4g}"
