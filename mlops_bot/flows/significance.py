"""The significance tests of one comparison, from both models' predictions files (decide/significance.py).

Gating: every metric of `compare.significance` (and of criteria with `significant: true`) must improve beyond
noise, Holm-corrected when there are several. Informational: the other metrics with comparative rules are
measured too when both files can give them, so the report can name rules that ask for less than the noise
(decide/noise.py); they never change the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..config.model import Compare, Criterion, Significance
from ..decide.decision import Champion, Decision, SignificanceResult
from ..decide.noise import noise_notes
from ..errors import DataError, UsageError
from ..metrics.predictions import PairedRows


@dataclass(frozen=True)
class Tested:
    gating: tuple[SignificanceResult, ...] = ()
    informational: tuple[SignificanceResult, ...] = ()


def direction_of(compare: Compare, metric: str) -> bool:
    """The metric's direction: its criterion's, else the one declared in compare.significance."""
    criterion = next((c for c in compare.criteria if c.metric == metric), None)
    if criterion is not None:
        return criterion.greater_is_better
    declared = compare.significance.greater_is_better if compare.significance is not None else None
    if declared is None:
        raise UsageError(f"compare.significance tests {metric!r}, which no criterion names, and declares no "
                         "greater_is_better: say which way is better (add greater_is_better to "
                         "compare.significance, or a criterion on the metric).")
    return declared


def run_tests(compare: Compare, champion: Champion | None, challenger_predictions: Path | None,
              champion_predictions: Path | None) -> Tested:
    """The gating tests (never skipped silently when a champion exists) and the informational ones."""
    from ..decide.significance import test_all

    spec = compare.significance
    if champion is None:
        return Tested()
    if challenger_predictions is None or champion_predictions is None:
        if spec is None:
            return Tested()
        missing = [flag for flag, path in (("--challenger-predictions", challenger_predictions),
                                           ("--champion-predictions", champion_predictions)) if path is None]
        raise DataError(f"compare.significance is configured but {' and '.join(missing)} "
                        f"{'was' if len(missing) == 1 else 'were'} not given: the test needs both models' "
                        "predictions on the same rows (or remove significance from ml.yaml).")
    named = (*(spec.metrics if spec else ()), *(c.metric for c in _comparative(compare.criteria)))
    rows = _paired(challenger_predictions, champion_predictions, named)
    gating: tuple[SignificanceResult, ...] = ()
    if spec is not None:
        gating = test_all(spec, rows, {m: direction_of(compare, m) for m in spec.metrics})
    return Tested(gating, _informational(compare, spec, rows, {s.metric for s in gating}))


def with_noise_notes(decision: Decision, compare: Compare, informational: Sequence[SignificanceResult]) -> Decision:
    """The decision with notes for the informational measurements as well (the gating ones are in already)."""
    if not informational:
        return decision
    extra = noise_notes(compare.criteria, decision.criteria, informational)
    return replace(decision, notes=decision.notes + extra) if extra else decision


def _paired(challenger: Path, champion: Path, metrics: Sequence[str]) -> PairedRows:
    from ..metrics.predictions import pair_predictions, read_predictions

    return pair_predictions(read_predictions(challenger), read_predictions(champion), metrics=metrics)


def _informational(compare: Compare, spec: Significance | None, rows: PairedRows,
                   tested: set[str]) -> tuple[SignificanceResult, ...]:
    from ..decide.significance import test_metric

    settings = spec or Significance(metrics=())  # the defaults; each test names its own metric below
    found = []
    for criterion in _comparative(compare.criteria):
        if criterion.metric in tested:
            continue
        try:
            found.append(test_metric(replace(settings, metrics=(criterion.metric,)), rows, criterion.metric,
                                     criterion.greater_is_better))
        except DataError:
            continue  # the files cannot give this metric: its rule is judged on the logged values alone
    return tuple(found)


def _comparative(criteria: Sequence[Criterion]) -> list[Criterion]:
    seen: dict[str, Criterion] = {}
    for c in criteria:
        if c.min_absolute_change is not None or c.min_relative_change is not None:
            seen.setdefault(c.metric, c)
    return list(seen.values())
