"""Rollout analysis: each `rollout.analysis` query filled in for this rollout, asked of Prometheus, and judged
against its bounds. A query with no data is judged by its `no_data` (hold by default: the step waits)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ...config.model import Analysis

Outcome = Literal["pass", "fail", "no_data"]
Measure = Callable[[str], "float | None"]  # a filled-in query -> its number (Prometheus.value)
_PLACEHOLDER = re.compile(r"\$(version|previous|target|model)\b")


@dataclass(frozen=True)
class Finding:
    name: str
    value: float | None
    outcome: Outcome
    bound: str  # "<= 0.01", ">= 0.9", "0.1..0.2"

    def line(self) -> str:
        shown = "no data" if self.value is None else f"{self.value:.6g}"
        return f"{self.name} = {shown} (bound {self.bound}): {self.outcome.replace('_', ' ')}"

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "value": self.value, "outcome": self.outcome, "bound": self.bound}


def fill(query: str, values: Mapping[str, str]) -> str:
    """$version, $previous, $target and $model replaced by their values (plain names: the schema and
    deploy/front.py allow no quote in them)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), query)


def judge(analysis: Analysis, value: float | None) -> Finding:
    bound = _bound(analysis)
    if value is None:
        outcome: Outcome = {"pass": "pass", "fail": "fail"}.get(analysis.no_data, "no_data")  # type: ignore[assignment]
        return Finding(analysis.name, None, outcome, bound)
    low = analysis.min is not None and value < analysis.min
    high = analysis.max is not None and value > analysis.max
    return Finding(analysis.name, value, "fail" if low or high else "pass", bound)


def analyse(analyses: Sequence[Analysis], measure: Measure, values: Mapping[str, str]) -> list[Finding]:
    return [judge(a, measure(fill(a.query, values))) for a in analyses]


def failed(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.outcome == "fail"]


def waiting(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.outcome == "no_data"]


def _bound(analysis: Analysis) -> str:
    if analysis.min is not None and analysis.max is not None:
        return f"{analysis.min:g}..{analysis.max:g}"
    if analysis.max is None and analysis.min is None:
        return "reported only"  # the shadow's agreement without min_agreement
    return f"<= {analysis.max:g}" if analysis.max is not None else f">= {analysis.min:g}"
