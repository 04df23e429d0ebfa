"""The drift check: every feature of the reference and current tables tested as monitor: says, the findings that
are not a test (missing columns, new categories, null-rate changes, a column that changed kind) and the verdict.

A missing column is a finding only for a feature monitor.features names. Without that list the features are the
columns both tables hold, and a column of the reference alone (the training data's label, a row id) is listed as
not compared: nothing tells it from a feature, and a serving batch never holds the label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config.model import Monitor
from ..errors import DataError
from .readers import shown
from .result import DriftResult, FeatureResult, Finding, TableInfo
from .stats import categorical_tests, numeric_tests, top_bins

NEW_CATEGORIES_SHOWN = 5
CHART_CATEGORIES = 10  # the most common categories keep a bar of their own; the rest share one


def check(reference: Any, current: Any, monitor: Monitor) -> DriftResult:
    """`reference` and `current` are data.Table objects."""
    shared = [c for c in reference.columns if c in current.columns]
    if not shared:
        raise DataError(f"the reference ({', '.join(reference.files)}) and the current data "
                        f"({', '.join(current.files)}) have no column in common: the reference has "
                        f"{_names(reference.columns)}, the current data {_names(current.columns)}; "
                        "set monitor.features to the columns to compare")
    findings: list[Finding] = []
    not_compared: tuple[str, ...] = ()
    if monitor.features:  # the model's features, named: one missing on either side is a finding
        for side in (reference, current):
            findings += [Finding("missing_column", f, f"{shown(f)} is listed in monitor.features but not in the "
                                 f"{side.label} data", side.label) for f in monitor.features
                         if f not in side.columns]
        features = [f for f in monitor.features if f in shared]
    else:
        # Unnamed, the features are the shared columns. The reference is the training data: its label and ids are
        # never in a batch the model is served, so a column it alone holds is noted, not a finding.
        not_compared = tuple(c for c in reference.columns if c not in current.columns)
        features = shared
    results = []
    for name in features:
        result, found = _feature(reference, current, name, monitor)
        results.append(result)
        findings += found
        if result.drifted and result.tests:
            crossed = [t for t in result.tests if t.drifted]
            findings.append(Finding("feature_drift", name, f"{shown(name)} drifted: " + ", ".join(
                _crossed(t.name, t.statistic, t.p_value, t.threshold) for t in crossed),
                ",".join(sorted(t.name for t in crossed))))
    drifted_count = sum(r.drifted for r in results)
    share = drifted_count / len(results) if results else 0.0
    if monitor.min_features is None and monitor.min_share is not None:
        drifted = bool(results) and share >= monitor.min_share
    else:
        drifted = drifted_count >= (monitor.min_features or 1)
    return DriftResult(reference=TableInfo.of(reference), current=TableInfo.of(current), features=tuple(results),
                       findings=tuple(findings), drifted=drifted, rule=_rule(monitor), not_compared=not_compared)


def _feature(reference: Any, current: Any, name: str, monitor: Monitor) -> tuple[FeatureResult, list[Finding]]:
    import numpy as np

    findings = []
    nulls = (reference.null_share(name), current.null_share(name))
    change = nulls[1] - nulls[0]
    if abs(change) >= monitor.null_rate_change:
        findings.append(Finding("null_rate", name, f"{shown(name)}: the share of empty values went from "
                                f"{nulls[0]:.1%} to {nulls[1]:.1%}",
                                "up" if change > 0 else "down"))
    kind, other = reference.kinds[name], current.kinds[name]
    if kind != other:
        findings.append(Finding("kind_change", name, f"{shown(name)} holds {_kind_words(kind)} in the reference data "
                                f"but {_kind_words(other)} in the current data", f"{kind}->{other}"))
        return FeatureResult(name, f"{kind}->{other}", (), 0, 0, None, True, nulls), findings
    if kind == "numeric":
        ref, cur = reference.columns[name], current.columns[name]
        ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        n_ref, n_cur = len(ref), len(cur)
        if n_ref and n_cur:
            tests, bins = numeric_tests(ref, cur, monitor.numeric_tests)
            return FeatureResult(name, kind, tests, n_ref, n_cur, bins, null_shares=nulls,
                                 require_all=monitor.require_all), findings
        return FeatureResult(name, kind, (), n_ref, n_cur, None, null_shares=nulls), findings
    ref_counts, cur_counts = reference.counts[name], current.counts[name]
    new = sorted((c for c in cur_counts if c not in ref_counts), key=lambda c: (-cur_counts[c], c))
    n_ref, n_cur = sum(ref_counts.values()), sum(cur_counts.values())
    if new and n_cur:
        share = sum(cur_counts[c] for c in new) / n_cur
        listed = ", ".join(shown(c) for c in new[:NEW_CATEGORIES_SHOWN])
        more = f" and {len(new) - NEW_CATEGORIES_SHOWN} more" if len(new) > NEW_CATEGORIES_SHOWN else ""
        findings.append(Finding("new_category", name, f"{shown(name)}: {len(new)} value(s) the reference never holds, "
                                f"{share:.1%} of the current rows: {listed}{more}", "\x1f".join(new)))
    if n_ref and n_cur:
        tests, bins = categorical_tests(ref_counts, cur_counts, monitor.categorical_tests)
        return FeatureResult(name, kind, tests, n_ref, n_cur, top_bins(bins, CHART_CATEGORIES), null_shares=nulls,
                             require_all=monitor.require_all), findings
    return FeatureResult(name, kind, (), n_ref, n_cur, None, null_shares=nulls), findings


def _crossed(test: str, statistic: float, p_value: float | None, threshold: float) -> str:
    if p_value is not None:
        return f"{test} p = {p_value:.3g} < {threshold:g}"
    return f"{test} {statistic:.3g} >= {threshold:g}"


def _kind_words(kind: str) -> str:
    return "numbers" if kind == "numeric" else "text"


def _names(columns: Sequence[str] | Any) -> str:
    names = list(columns)
    listed = ", ".join(shown(c) for c in names[:10])
    return (listed + (f" and {len(names) - 10} more" if len(names) > 10 else "")) or "no column"


def _rule(monitor: Monitor) -> str:
    if monitor.min_features is None and monitor.min_share is not None:
        return f"at least {monitor.min_share:.0%} of the features drift"
    count = monitor.min_features or 1
    return f"at least {count} feature{'s' if count != 1 else ''} drift{'s' if count == 1 else ''}"
