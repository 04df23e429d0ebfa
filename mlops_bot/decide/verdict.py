"""Criteria + significance -> Decision. Pure: no I/O, no clock unless none is passed in.

Rules, per criterion (all must pass; every check says why in words):
- A challenger value that is missing, NaN or infinite fails the criterion.
- `threshold` is a floor when greater is better, a ceiling otherwise.
- `min_absolute_change` / `min_relative_change` (MLflow MetricThreshold semantics): the challenger must beat
  the champion by at least that much, in the metric's units or as a fraction of |champion|.
- `max_regression` (guard metrics): the challenger may be worse by at most `absolute` units and at most
  `relative` * |champion|; when both are given, both must hold.
- Comparative rules need a champion value: a champion without a usable value fails the criterion with a
  reason. No champion at all is a bootstrap: only thresholds apply and the decision says so.
- Boundaries (metrics/numbers.py): values compare as the decimals they print as (`repr`), so 0.9 + 0.005 vs
  0.905 is exact, plus a tolerance of 4 ulps of the largest operand for values that user code computed in binary
  floating point. A challenger exactly on a boundary passes.
- Zero baseline: a strictly better challenger has an unbounded relative gain over 0, so it meets any
  `min_relative_change`; an equal or worse one has none and fails it. `max_regression.relative` passes a
  challenger that is not worse at all, and a tolerance that is a fraction of 0 allows no worsening: it defers to
  `max_regression.absolute` when there is one, else fails saying so.
- Significance (decide/significance.py): each tested metric must improve beyond noise; `notes` name the rules
  that ask for less than the rows can resolve.
- A metric that neither the challenger nor the champion logged is a DataError (exit 3): a typo in ml.yaml or a
  step that stopped writing it, never a silent verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from ..config.model import Compare, Criterion
from ..errors import DataError, UsageError
from ..metrics.names import did_you_mean
from ..metrics.numbers import fmt
from .criteria import judge_criterion
from .decision import Challenger, Champion, CriterionResult, Decision, ParamChange, SignificanceResult
from .noise import noise_notes

__all__ = ["decide", "params_diff"]


def decide(
    model: str,
    compare: Compare,
    challenger: Challenger,
    champion: Champion | None,
    *,
    significance: Sequence[SignificanceResult] = (),
    now: datetime | None = None,
) -> Decision:
    """Judges every criterion; the verdict passes only if all pass and every configured significance test agrees.

    Earlier champions for the report are not an input to the verdict: add them with `Decision.with_history`.
    """
    if not compare.criteria:
        raise UsageError("compare.criteria is empty: declare at least one criterion in ml.yaml.")
    _check_logged(compare.criteria, challenger, champion)
    tested = {s.metric for s in significance}
    if compare.significance is not None and champion is not None and set(compare.significance.metrics) - tested:
        untested = ", ".join(repr(m) for m in compare.significance.metrics if m not in tested)
        raise DataError(
            f"compare.significance is configured for {untested} but no significance result was computed: give "
            "both models' predictions on the same rows, or remove significance from ml.yaml."
        )
    results = tuple(judge_criterion(c, challenger.metrics, champion) for c in compare.criteria)
    passed = all(r.passed for r in results) and all(s.significant for s in significance)
    created = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return Decision(
        model=model,
        verdict="pass" if passed else "fail",
        bootstrap=champion is None,
        summary=_summary(results, champion, significance, compare),
        challenger=challenger,
        champion=champion,
        criteria=results,
        created_at=created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        significance=tuple(significance),
        notes=noise_notes(compare.criteria, results, significance),
        params_diff=params_diff(champion.params, challenger.params) if champion is not None else (),
    )


def params_diff(champion: Mapping[str, str], challenger: Mapping[str, str]) -> tuple[ParamChange, ...]:
    names = sorted(set(champion) | set(challenger))
    return tuple(ParamChange(n, champion.get(n), challenger.get(n)) for n in names
                 if champion.get(n) != challenger.get(n))


def _check_logged(criteria: Sequence[Criterion], challenger: Challenger, champion: Champion | None) -> None:
    logged = set(challenger.metrics)
    if champion is not None:
        logged |= set(champion.metrics) | set(champion.rescored_metrics or {})
    for criterion in criteria:
        if criterion.metric in logged:
            continue
        hint = did_you_mean(criterion.metric, logged) or f"logged: {', '.join(sorted(logged)) or 'nothing'}."
        who = "was logged by neither the challenger nor the champion" if champion is not None else \
            "was not logged by the challenger (and there is no champion yet)"
        raise DataError(f"compare.criteria: metric {criterion.metric!r} {who}; fix the name in ml.yaml or make "
                        f"the evaluation write it ({hint})")


def _summary(results: Sequence[CriterionResult], champion: Champion | None,
             significance: Sequence[SignificanceResult], compare: Compare) -> str:
    total = len(results)
    failed = [r.metric for r in results if not r.passed]
    against = f" against {champion.title}" if champion is not None else ""
    if total == 1:
        text = f"The challenger {'fails' if failed else 'passes'} its criterion ({results[0].metric}){against}."
    elif failed:
        text = f"The challenger fails {len(failed)} of {total} criteria{against}: {', '.join(failed)}."
    else:
        text = f"The challenger passes all {total} criteria{against}."
    if champion is None:
        text = "No champion yet (bootstrap), so only absolute thresholds apply. " + text
        if compare.significance is not None:
            text += " Significance was not tested: there is no champion to compare with."
    else:
        for s in significance:
            if not s.significant:
                text += f" It shows no significant improvement in {s.metric} at alpha {fmt(s.alpha)}."
    return text
