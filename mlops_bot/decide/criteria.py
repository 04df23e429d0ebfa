"""One criterion against the challenger's and the champion's values -> CriterionResult. Pure.

The rules and their edge cases are listed in verdict.py's docstring; this module applies them one check at a
time, each check with its reason in words. verdict.py's `decide` judges every criterion this way and makes the
Decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from ..config.model import Criterion, Regression
from ..metrics.names import hint
from ..metrics.numbers import at_least, diff, exact, fmt, pair, share
from .decision import Baseline, Champion, Check, CriterionResult, Metrics, Rule


def judge_criterion(criterion: Criterion, challenger: Metrics, champion: Champion | None) -> CriterionResult:
    """One criterion's verdict, with the reason of every check."""
    name = criterion.metric
    x = challenger.get(name)
    c, baseline = _baseline(name, champion)
    checks: list[Check] = []
    if x is None or not math.isfinite(x):
        what = f"logged no value for it{hint(name, challenger)}" if x is None else f"logged {fmt(x)}"
        checks.append(Check("value", False, f"{name}: the challenger {what}, which cannot pass"))
    else:
        if criterion.threshold is not None:
            checks.append(_threshold(name, x, criterion.threshold, criterion.greater_is_better))
        if comparative_rules(criterion):
            checks.extend(_against_champion(criterion, x, c, champion))
        if not checks:
            checks.append(Check("value", True, f"{name} {fmt(x)} is logged (no threshold or change rule)"))
    change = None
    if x is not None and c is not None and math.isfinite(x) and math.isfinite(c):
        change = float(diff(x, c))
    return CriterionResult(
        metric=name,
        greater_is_better=criterion.greater_is_better,
        passed=all(k.passed for k in checks),
        reason="; ".join(k.reason for k in checks),
        criterion=describe(criterion),
        challenger=x,
        champion=c,
        baseline=baseline,
        change=change,
        change_pct=None if change is None or not c else 100.0 * change / abs(c),
        checks=tuple(checks),
    )


def describe(criterion: Criterion) -> str:
    """The criterion in short words for the report's table."""
    up = criterion.greater_is_better
    parts = []
    if criterion.threshold is not None:
        parts.append(f"{'>=' if up else '<='} {fmt(criterion.threshold)}")
    if criterion.min_absolute_change is not None:
        parts.append(f"{'+' if up else '-'}{fmt(criterion.min_absolute_change)} vs champion")
    if criterion.min_relative_change is not None:
        parts.append(f"{'+' if up else '-'}{fmt(100 * criterion.min_relative_change)}% vs champion")
    reg = criterion.max_regression
    if reg is not None:
        limits = [fmt(reg.absolute)] if reg.absolute is not None else []
        limits += [f"{fmt(100 * reg.relative)}%"] if reg.relative is not None else []
        parts.append(f"at most {' and '.join(limits)} worse")
    return "; ".join(parts) or "logged"


def comparative_rules(criterion: Criterion) -> list[Rule]:
    rules: list[Rule] = []
    if criterion.min_absolute_change is not None:
        rules.append("min_absolute_change")
    if criterion.min_relative_change is not None:
        rules.append("min_relative_change")
    if criterion.max_regression is not None:
        rules.append("max_regression")
    return rules


def _baseline(name: str, champion: Champion | None) -> tuple[float | None, Baseline | None]:
    if champion is None:
        return None, None
    if champion.rescored_metrics is not None and name in champion.rescored_metrics:
        return champion.rescored_metrics[name], "rescored"
    if name in champion.metrics:
        return champion.metrics[name], "logged"
    return None, None


def _threshold(name: str, x: float, t: float, up: bool) -> Check:
    ok = at_least(exact(x), exact(t), x, t) if up else at_least(exact(t), exact(x), x, t)
    sx, st = pair(x, t, not ok)
    op = (">=" if ok else "<") if up else ("<=" if ok else ">")
    return Check("threshold", ok, f"{name} {sx} {op} threshold {st}")


def _against_champion(criterion: Criterion, x: float, c: float | None, champion: Champion | None) -> list[Check]:
    if champion is None:
        rules = ", ".join(comparative_rules(criterion))
        return [Check("bootstrap", True, f"no champion yet (bootstrap): {rules} not applied")]
    name, title = criterion.metric, champion.title
    if c is None or not math.isfinite(c):
        logged = [*champion.metrics, *(champion.rescored_metrics or {})]
        what = f"logged no value for it{hint(name, logged)}" if c is None else f"logged {fmt(c)}"
        return [Check("baseline", False, f"{name}: {title} {what}, so the challenger cannot be "
                                         "compared with it")]
    base = _Base(title, c, champion.rescored_metrics is not None and name in champion.rescored_metrics)
    checks = []
    if criterion.min_absolute_change is not None:
        checks.append(_min_absolute(criterion, x, base))
    if criterion.min_relative_change is not None:
        checks.append(_min_relative(criterion, x, base))
    if criterion.max_regression is not None:
        checks.extend(_max_regression(criterion.metric, criterion.max_regression, criterion.greater_is_better,
                                      x, base))
    return checks


@dataclass(frozen=True)
class _Base:
    """The champion's value a comparative rule measures against, and how messages name it."""

    title: str
    value: float
    rescored: bool

    @property
    def ref(self) -> str:
        return f"{self.title} ({fmt(self.value)}{', rescored' if self.rescored else ''})"

    @property
    def owner(self) -> str:
        return f"{self.title}'s{' rescored' if self.rescored else ''}"


def _min_absolute(criterion: Criterion, x: float, base: _Base) -> Check:
    c = base.value
    need = criterion.min_absolute_change or 0.0
    up = criterion.greater_is_better
    gain = diff(x, c) if up else diff(c, x)
    ok = at_least(gain, exact(need), x, c, need)
    change, needed = pair(diff(x, c), need if up else -need, not ok, signed=True)
    return Check("min_absolute_change", ok, f"{change} vs {base.ref}, needs {needed}")


def _min_relative(criterion: Criterion, x: float, base: _Base) -> Check:
    c = base.value
    need = criterion.min_relative_change or 0.0
    up = criterion.greater_is_better
    gain = diff(x, c) if up else diff(c, x)
    if c == 0:  # any gain over 0 is an unbounded relative gain; no gain is none, whatever the fraction asked
        if gain > 0 or (gain == 0 and need == 0):
            return Check("min_relative_change", True, f"{fmt(x)} vs {base.ref}: better than 0 by any fraction, "
                         f"so the {fmt(100 * need)}% needed is met" if gain > 0 else "no change, and none is needed")
        return Check("min_relative_change", False, f"{fmt(x)} is {'no better than' if gain == 0 else 'worse than'} "
                     f"{base.ref}; a relative gain over 0 needs the challenger strictly better")
    ok = at_least(gain, share(need, c), x, c, float(share(need, c)))
    pct = 100 * float(diff(x, c)) / abs(c)
    change, needed = pair(pct, 100 * need if up else -100 * need, not ok, signed=True, digits=3)
    return Check("min_relative_change", ok, f"{change}% vs {base.ref}, needs {needed}%")


def _max_regression(name: str, reg: Regression, up: bool, x: float, base: _Base) -> list[Check]:
    c = base.value
    worse = diff(c, x) if up else diff(x, c)
    if at_least(exact(0.0), worse, x, c):
        return [Check("max_regression", True, f"{name} {fmt(x)} is not worse than {base.ref}")]
    checks = []
    if reg.absolute is not None:
        ok = at_least(exact(reg.absolute), worse, x, c, reg.absolute)
        amount, allowed = pair(worse, reg.absolute, not ok)
        checks.append(Check("max_regression.absolute", ok, f"{name} {fmt(x)} is {amount} worse than "
                            f"{base.ref}; at most {allowed} allowed"))
    if reg.relative is not None:
        checks.append(_relative_regression(name, reg, x, worse, base))
    return checks


def _relative_regression(name: str, reg: Regression, x: float, worse: Decimal, base: _Base) -> Check:
    c = base.value
    relative = reg.relative or 0.0
    if c == 0:
        if reg.absolute is not None:
            return Check("max_regression.relative", True, f"a relative tolerance of {base.owner} {name} "
                         "of 0 is undefined, so max_regression.absolute alone judges it")
        return Check("max_regression.relative", False, f"{name} {fmt(x)} is worse than {base.owner} 0, and "
                     "a relative tolerance of 0 is undefined; add max_regression.absolute to judge it")
    allowance = share(relative, c)
    ok = at_least(allowance, worse, x, c, float(allowance))
    pct, allowed = pair(100 * float(worse) / abs(c), 100 * relative, not ok, digits=3)
    return Check("max_regression.relative", ok, f"{name} {fmt(x)} is {pct}% worse than {base.ref}; "
                 f"at most {allowed}% allowed")
