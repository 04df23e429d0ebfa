"""A Decision's JSON form: the document `--json` prints and `schemas/decision.schema.json` describes.

`from_document` reads it back (the `report` command posts a Decision written earlier) and refuses a name outside
its Literal type with a ValueError. JSON has no NaN or infinity, so non-finite metric values travel as the
strings "NaN", "Infinity" and "-Infinity".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

from .decision import (
    ALTERNATIVES,
    BASELINES,
    RULES,
    SIGNIFICANCE_TESTS,
    VERDICTS,
    Challenger,
    Champion,
    Check,
    CriterionResult,
    Decision,
    HistoryPoint,
    Metrics,
    ParamChange,
    SignificanceResult,
)

SCHEMA_VERSION = 2  # 2: significance is a list (one per tested metric), notes
Number = float | str  # a finite float, or one of the strings above
_Name = TypeVar("_Name", bound=str)


def to_document(decision: Decision) -> dict[str, Any]:
    """The Decision as strict JSON data: `json.dumps(..., allow_nan=False)` accepts it."""
    return {
        "schema_version": SCHEMA_VERSION,
        "model": decision.model,
        "verdict": decision.verdict,
        "bootstrap": decision.bootstrap,
        "summary": decision.summary,
        "created_at": decision.created_at,
        "challenger": _challenger_dict(decision.challenger),
        "champion": None if decision.champion is None else _champion_dict(decision.champion),
        "criteria": [_criterion_dict(c) for c in decision.criteria],
        "significance": [_significance_dict(s) for s in decision.significance],
        "notes": list(decision.notes),
        "params_diff": [{"name": p.name, "champion": p.champion, "challenger": p.challenger}
                        for p in decision.params_diff],
        "history": [{"version": h.version, "run_id": h.run_id, "metrics": dump_metrics(h.metrics),
                     "created_at": h.created_at} for h in decision.history],
    }


def from_document(doc: Mapping[str, Any]) -> Decision:
    """The inverse of `to_document`; a KeyError, TypeError or ValueError means `doc` is not a Decision."""
    champion = doc["champion"]
    significance = doc.get("significance") or []
    if isinstance(significance, Mapping):  # schema version 1: one test or null
        significance = [significance]
    return Decision(
        model=doc["model"],
        verdict=one_of(doc["verdict"], VERDICTS, "verdict"),
        bootstrap=bool(doc["bootstrap"]),
        summary=doc["summary"],
        created_at=doc["created_at"],
        challenger=_challenger_from(doc["challenger"]),
        champion=None if champion is None else _champion_from(champion),
        criteria=tuple(_criterion_from(c) for c in doc["criteria"]),
        significance=tuple(_significance_from(s) for s in significance),
        notes=tuple(str(n) for n in doc.get("notes", ())),
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
            "rescored_metrics": rescored, "params": dict(c.params), "rescored_at": c.rescored_at,
            "rescore_reused": c.rescore_reused}


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
        "greater_is_better": s.greater_is_better, "alternative": s.alternative, "adjusted_p": s.adjusted_p,
        "mde": dump_number(s.mde), "resolution": dump_number(s.resolution),
    }


def one_of(value: object, allowed: tuple[_Name, ...], what: str) -> _Name:
    """`value` as one of the `allowed` names (a Literal type's values); a ValueError for anything else."""
    for name in allowed:
        if value == name:
            return name
    raise ValueError(f"{what} is {value!r}, not one of {', '.join(allowed)}")


def load_metrics(doc: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in doc.items()}


def _challenger_from(d: Mapping[str, Any]) -> Challenger:
    return Challenger(run_id=d.get("run_id"), metrics=load_metrics(d["metrics"]), params=dict(d.get("params", {})),
                      lineage=dict(d.get("lineage", {})), source=d.get("source", ""))


def _champion_from(d: Mapping[str, Any]) -> Champion:
    rescored = d.get("rescored_metrics")
    return Champion(version=d.get("version"), run_id=d.get("run_id"), metrics=load_metrics(d["metrics"]),
                    rescored_metrics=None if rescored is None else load_metrics(rescored),
                    params=dict(d.get("params", {})), source=d.get("source", ""),
                    rescored_at=d.get("rescored_at"), rescore_reused=bool(d.get("rescore_reused", False)))


def _criterion_from(d: Mapping[str, Any]) -> CriterionResult:
    return CriterionResult(
        metric=d["metric"], greater_is_better=bool(d["greater_is_better"]), passed=bool(d["passed"]),
        reason=d["reason"], criterion=d["criterion"], challenger=load_number(d["challenger"]),
        champion=load_number(d["champion"]), change=load_number(d.get("change")),
        baseline=None if d.get("baseline") is None else one_of(d["baseline"], BASELINES, "baseline"),
        change_pct=load_number(d.get("change_pct")),
        checks=tuple(Check(one_of(k["rule"], RULES, "rule"), bool(k["passed"]), k["reason"])
                     for k in d.get("checks", ())),
    )


def _significance_from(d: Mapping[str, Any]) -> SignificanceResult:
    observed = load_number(d["observed"])
    return SignificanceResult(
        metric=d["metric"], test=one_of(d["test"], SIGNIFICANCE_TESTS, "significance test"), method=d["method"],
        alpha=float(d["alpha"]), n=int(d["n"]),
        observed=math.nan if observed is None else observed, significant=bool(d["significant"]),
        reason=d["reason"], statistic=load_number(d.get("statistic")), p_value=load_number(d.get("p_value")),
        ci_low=load_number(d.get("ci_low")), ci_high=load_number(d.get("ci_high")),
        greater_is_better=bool(d.get("greater_is_better", True)),
        alternative=one_of(d.get("alternative", "better"), ALTERNATIVES, "alternative"),
        adjusted_p=load_number(d.get("adjusted_p")), mde=load_number(d.get("mde")),
        resolution=load_number(d.get("resolution")),
    )
