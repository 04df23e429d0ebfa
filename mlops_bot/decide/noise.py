"""Naming noise: where a comparative rule asks for a change the evaluation rows cannot tell apart from chance.

A `min_absolute_change` (or the absolute amount a `min_relative_change` asks of the champion's value) below
- the rows' resolution (1/n for accuracy-like metrics: one row more or less right), or
- the half-width of the difference's confidence interval (what retrains that changed nothing differ by),
passes retrains that changed nothing often. The note says so, with the minimum detectable effect at alpha and
80% power, so the rule can be raised or the metric tested for significance. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config.model import Criterion
from ..metrics.numbers import fmt
from .decision import CriterionResult, SignificanceResult


def noise_notes(criteria: Sequence[Criterion], results: Sequence[CriterionResult],
                tests: Sequence[SignificanceResult]) -> tuple[str, ...]:
    """One note per comparative rule below its metric's resolution or noise; `tests` are the metric tests
    (gating or not) that measured it."""
    measured = {t.metric: t for t in tests}
    notes = []
    for criterion, result in zip(criteria, results, strict=True):
        test = measured.get(criterion.metric)
        if test is None:
            continue
        for rule, amount in _asked(criterion, result.champion):
            note = _note(criterion.metric, rule, amount, test)
            if note:
                notes.append(note)
    return tuple(notes)


def resolution_notes(criteria: Sequence[Criterion], rows: int) -> tuple[str, ...]:
    """What `validate` can say before any comparison: a `min_absolute_change` on an accuracy-like metric below
    1/rows of the evaluation (the predictions file of the last run) passes any improvement at all."""
    from .measures import lookup

    notes = []
    for i, criterion in enumerate(criteria):
        measure = lookup(criterion.metric)
        amount = criterion.min_absolute_change
        if rows and amount is not None and measure is not None and measure.accuracy_like and amount < 1 / rows:
            notes.append(f"compare.criteria[{i}].min_absolute_change {fmt(amount)} on {criterion.metric} is less "
                         f"than one row of the {rows} evaluated ({fmt(1 / rows, 3)}): any improvement passes it; "
                         "raise it, or test the metric for significance (significant: true).")
    return tuple(notes)


def _asked(criterion: Criterion, champion: float | None) -> list[tuple[str, float]]:
    """(rule, the change it asks for in the metric's units) for each comparative rule of `criterion`."""
    asked = []
    if criterion.min_absolute_change is not None:
        asked.append(("min_absolute_change", criterion.min_absolute_change))
    if criterion.min_relative_change is not None and champion is not None and champion != 0:
        asked.append(("min_relative_change", criterion.min_relative_change * abs(champion)))
    return asked


def _note(metric: str, rule: str, amount: float, test: SignificanceResult) -> str:
    half = (test.ci_high - test.ci_low) / 2 if test.ci_low is not None and test.ci_high is not None else None
    mde = f"; the smallest change {test.n} rows detect with 80% power at alpha {fmt(test.alpha)} is " \
          f"{fmt(test.mde, 3)}" if test.mde is not None else ""
    asks = f"{rule} on {metric} asks for {fmt(amount, 3)}"
    if test.resolution is not None and amount < test.resolution:
        return (f"{asks}, less than one row of the {test.n} evaluated ({fmt(test.resolution, 3)}): any "
                f"improvement passes it{mde}.")
    if half is not None and amount < half:
        return (f"{asks}, within the noise of the difference (±{fmt(half, 3)} at {fmt(100 * test.level)}% "
                f"confidence over {test.n} rows): retrains that changed nothing pass it often{mde}.")
    return ""
