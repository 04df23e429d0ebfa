"""The Decision: what `compare` concluded and why, as frozen dataclasses with a JSON form.

`to_dict` gives the document `--json` prints and `schemas/decision.schema.json` describes; `from_dict`
reads it back (the `report` command posts a Decision written earlier). JSON has no NaN or infinity, so
non-finite metric values travel as the strings "NaN", "Infinity" and "-Infinity".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1
Metrics = Mapping[str, float]
Number = float | str  # a finite float, or one of the strings above


@dataclass(frozen=True)
class Check:
    """One rule of a criterion: `rule` is threshold, min_absolute_change, min_relative_change,
    max_regression.absolute, max_regression.relative, value (the challenger has a usable value),
    baseline (the champion has one) or bootstrap (a comparative rule skipped: no champion yet)."""

    rule: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class CriterionResult:
    metric: str
    greater_is_better: bool
    passed: bool
    reason: str  # the checks' reasons in one sentence
    criterion: str  # the criterion in short words, e.g. ">= 0.9; +0.005 over champion"
    challenger: float | None
    champion: float | None  # the baseline judged against: rescored when available, else as logged
    baseline: str | None = None  # "rescored" | "logged" | None (no champion value)
    change: float | None = None  # challenger - champion
    change_pct: float | None = None  # 100 * change / |champion|; None when the champion is 0
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class SignificanceResult:
    metric: str
    test: str  # paired_bootstrap | mcnemar
    method: str  # e.g. "percentile bootstrap, 10000 resamples, seed 0" or "exact binomial"
    alpha: float
    n: int  # paired rows
    observed: float  # challenger - champion on the per-row scores
    significant: bool
    reason: str
    statistic: float | None = None
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass(frozen=True)
class Challenger:
    run_id: str | None
    metrics: Metrics
    params: Mapping[str, str] = field(default_factory=dict)
    lineage: Mapping[str, str] = field(default_factory=dict)  # commit, branch, data hash, ml.yaml digest...
    source: str = ""  # where the metrics came from: "run", or a file path in offline mode


@dataclass(frozen=True)
class Champion:
    version: str | None  # None when read from a file (offline compare)
    run_id: str | None
    metrics: Metrics  # as logged on its run when it was trained
    rescored_metrics: Metrics | None = None  # the same evaluation re-run on today's data
    params: Mapping[str, str] = field(default_factory=dict)
    source: str = ""  # e.g. "models:/iris@champion" or a file path

    @property
    def label(self) -> str:
        """"v3"; "" when the champion came from a file."""
        return f"v{self.version}" if self.version else ""

    @property
    def title(self) -> str:
        """How messages name it: "champion v3", or "the champion" for a file."""
        return f"champion {self.label}" if self.version else "the champion"


@dataclass(frozen=True)
class ParamChange:
    name: str
    champion: str | None  # None: the champion had no such param
    challenger: str | None


@dataclass(frozen=True)
class HistoryPoint:
    """A previous champion, oldest first in Decision.history."""

    version: str
    run_id: str | None
    metrics: Metrics
    created_at: int | None = None  # ms since the epoch


@dataclass(frozen=True)
class Decision:
    model: str
    verdict: str  # pass | fail
    bootstrap: bool
    summary: str
    challenger: Challenger
    champion: Champion | None
    criteria: tuple[CriterionResult, ...]
    created_at: str  # ISO 8601, UTC
    significance: SignificanceResult | None = None
    params_diff: tuple[ParamChange, ...] = ()
    history: tuple[HistoryPoint, ...] = ()

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "verdict": self.verdict,
            "bootstrap": self.bootstrap,
            "summary": self.summary,
            "created_at": self.created_at,
            "challenger": _challenger_dict(self.challenger),
            "champion": None if self.champion is None else _champion_dict(self.champion),
            "criteria": [_criterion_dict(c) for c in self.criteria],
            "significance": None if self.significance is None else _significance_dict(self.significance),
            "params_diff": [{"name": p.name, "champion": p.champion, "challenger": p.challenger}
                            for p in self.params_diff],
            "history": [{"version": h.version, "run_id": h.run_id, "metrics": dump_metrics(h.metrics),
                         "created_at": h.created_at} for h in self.history],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Decision:
        """The inverse of `to_dict`; a KeyError or TypeError means the document is not a Decision."""
        champion = doc["champion"]
        significance = doc.get("significance")
        return cls(
            model=doc["model"],
            verdict=doc["verdict"],
            bootstrap=bool(doc["bootstrap"]),
            summary=doc["summary"],
            created_at=doc["created_at"],
            challenger=_challenger_from(doc["challenger"]),
            champion=None if champion is None else _champion_from(champion),
            criteria=tuple(_criterion_from(c) for c in doc["criteria"]),
            significance=None if significance is None else _significance_from(significance),
            params_diff=tuple(ParamChange(p["name"], p["champion"], p["challenger"])
                              for p in doc.get("params_diff", ())),
            history=tuple(HistoryPoint(h["version"], h.get("run_id"), load_metrics(h["metrics"]),
                                       h.get("created_at")) for h in doc.get("history", ())),
        )


def dump_number(value: float | None) -> Number | None:
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def load_number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        return float(value)  # "NaN", "Infinity", "-Infinity" are what float() reads
    return float(value)


def dump_metrics(metrics: Metrics) -> dict[str, Number | None]:
    return {k: dump_number(v) for k, v in metrics.items()}


def _challenger_dict(c: Challenger) -> dict[str, Any]:
    return {"run_id": c.run_id, "source": c.source, "metrics": dump_metrics(c.metrics),
            "params": dict(c.params), "lineage": dict(c.lineage)}


def _champion_dict(c: Champion) -> dict[str, Any]:
    rescored = None if c.rescored_metrics is None else dump_metrics(c.rescored_metrics)
    return {"version": c.version, "run_id": c.run_id, "source": c.source, "metrics": dump_metrics(c.metrics),
            "rescored_metrics": rescored, "params": dict(c.params)}


def _criterion_dict(c: CriterionResult) -> dict[str, Any]:
    return {
        "metric": c.metric, "greater_is_better": c.greater_is_better, "passed": c.passed,
        "reason": c.reason, "criterion": c.criterion,
        "challenger": dump_number(c.challenger), "champion": dump_number(c.champion),
        "baseline": c.baseline, "change": dump_number(c.change), "change_pct": dump_number(c.change_pct),
        "checks": [{"rule": k.rule, "passed": k.passed, "reason": k.reason} for k in c.checks],
    }


def _significance_dict(s: SignificanceResult) -> dict[str, Any]:
    return {
        "metric": s.metric, "test": s.test, "method": s.method, "alpha": s.alpha, "n": s.n,
        "observed": dump_number(s.observed), "significant": s.significant, "reason": s.reason,
        "statistic": dump_number(s.statistic), "p_value": s.p_value,
        "ci_low": dump_number(s.ci_low), "ci_high": dump_number(s.ci_high),
    }


def load_metrics(doc: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in doc.items()}


def _challenger_from(d: Mapping[str, Any]) -> Challenger:
    return Challenger(run_id=d.get("run_id"), metrics=load_metrics(d["metrics"]), params=dict(d.get("params", {})),
                      lineage=dict(d.get("lineage", {})), source=d.get("source", ""))


def _champion_from(d: Mapping[str, Any]) -> Champion:
    rescored = d.get("rescored_metrics")
    return Champion(version=d.get("version"), run_id=d.get("run_id"), metrics=load_metrics(d["metrics"]),
                    rescored_metrics=None if rescored is None else load_metrics(rescored),
                    params=dict(d.get("params", {})), source=d.get("source", ""))


def _criterion_from(d: Mapping[str, Any]) -> CriterionResult:
    return CriterionResult(
        metric=d["metric"], greater_is_better=bool(d["greater_is_better"]), passed=bool(d["passed"]),
        reason=d["reason"], criterion=d["criterion"], challenger=load_number(d["challenger"]),
        champion=load_number(d["champion"]), baseline=d.get("baseline"), change=load_number(d.get("change")),
        change_pct=load_number(d.get("change_pct")),
        checks=tuple(Check(k["rule"], bool(k["passed"]), k["reason"]) for k in d.get("checks", ())),
    )


def _significance_from(d: Mapping[str, Any]) -> SignificanceResult:
    observed = load_number(d["observed"])
    return SignificanceResult(
        metric=d["metric"], test=d["test"], method=d["method"], alpha=float(d["alpha"]), n=int(d["n"]),
        observed=math.nan if observed is None else observed, significant=bool(d["significant"]),
        reason=d["reason"], statistic=load_number(d.get("statistic")), p_value=load_number(d.get("p_value")),
        ci_low=load_number(d.get("ci_low")), ci_high=load_number(d.get("ci_high")),
    )
