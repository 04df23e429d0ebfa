"""The exact binomial test at 1/2 and the Clopper-Pearson interval, from scipy.special's binomial and beta
functions: the values scipy.stats.binomtest computes (tests/decide/test_reference.py), without importing
scipy.stats, whose import is about half a second of every check that tests significance."""

from __future__ import annotations


def p_greater(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2): the one-sided p of k successes."""
    from scipy.special import bdtrc

    return 1.0 if k <= 0 else float(bdtrc(k - 1, n, 0.5))


def p_two_sided(k: int, n: int) -> float:
    """binomtest's two-sided p at 1/2: the outcomes no likelier than k, both tails (equal by symmetry)."""
    from scipy.special import bdtr

    return min(1.0, 2.0 * float(bdtr(min(k, n - k), n, 0.5)))


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """The exact two-sided interval of the proportion k/n at `confidence`."""
    from scipy.special import betaincinv

    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, alpha / 2))
    high = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - alpha / 2))
    return low, high
