"""The Decision: what `compare` concluded and why, as frozen dataclasses.

The closed sets of names a Decision uses (verdict, baseline, rule, significance test) are Literal types, so
mypy checks every place that makes or compares one. Its JSON form (`to_document`, `from_document`) is in document.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

Metrics = Mapping[str, float]

Verdict = Literal["pass", "fail"]
Baseline = Literal["rescored", "logged"]  # which champion value a criterion was judged against
SignificanceTest = Literal["paired_bootstrap", "mcnemar"]
Alternative = Literal["better", "two-sided"]
Rule = Literal["threshold", "min_absolute_change", "min_relative_change", "max_regression",
               "max_regression.absolute", "max_regression.relative", "value", "baseline", "bootstrap"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
BASELINES: tuple[Baseline, ...] = get_args(Baseline)
SIGNIFICANCE_TESTS: tuple[SignificanceTest, ...] = get_args(SignificanceTest)
ALTERNATIVES: tuple[Alternative, ...] = get_args(Alternative)
RULES: tuple[Rule, ...] = get_args(Rule)


@dataclass(frozen=True)
class Check:
    """One rule of a criterion and how it went. Besides the criterion's own rules: `value` (the challenger has a
    usable value), `baseline` (the champion has one), `bootstrap` (a comparative rule skipped: no champion yet)
    and `max_regression` (not worse at all, so neither tolerance was needed)."""

    rule: Rule
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
    baseline: Baseline | None = None  # None: no champion value
    change: float | None = None  # challenger - champion
    change_pct: float | None = None  # 100 * change / |champion|; None when the champion is 0
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class SignificanceResult:
    """One metric's test. `observed` and the interval are of the difference challenger - champion of the metric
    as defined (f1_macro recomputed on each resample, not a per-row proxy); `p_value` is one-sided (the
    challenger better) unless `alternative` is "two-sided"; `adjusted_p` is Holm's when several metrics are
    tested, and `significant` is judged on it."""

    metric: str
    test: SignificanceTest
    method: str  # e.g. "BCa bootstrap, 10000 resamples, seed 0" or "exact binomial McNemar"
    alpha: float
    n: int  # paired rows
    observed: float  # challenger - champion of the metric
    significant: bool
    reason: str
    statistic: float | None = None
    p_value: float | None = None
    ci_low: float | None = None  # the interval of the difference at `level`: its better-side end is the test's bound
    ci_high: float | None = None
    greater_is_better: bool = True
    alternative: Alternative = "better"
    adjusted_p: float | None = None  # Holm-adjusted p when more than one metric is tested
    mde: float | None = None  # minimum detectable effect at alpha with 80% power, in the metric's units
    resolution: float | None = None  # the smallest change the rows can show (1/n for accuracy-like metrics)

    @property
    def level(self) -> float:
        """The interval's confidence: 1 - 2 alpha for the one-sided test (its better-side end is the alpha bound),
        1 - alpha for the two-sided one."""
        return 1 - 2 * self.alpha if self.alternative == "better" else 1 - self.alpha


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
    rescored_at: str | None = None  # when that evaluation ran (ISO 8601, UTC)
    rescore_reused: bool = False  # the evaluation was recorded by an earlier check on the same inputs

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
    verdict: Verdict
    bootstrap: bool
    summary: str
    challenger: Challenger
    champion: Champion | None
    criteria: tuple[CriterionResult, ...]
    created_at: str  # ISO 8601, UTC
    significance: tuple[SignificanceResult, ...] = ()  # one per tested metric
    params_diff: tuple[ParamChange, ...] = ()
    history: tuple[HistoryPoint, ...] = ()
    notes: tuple[str, ...] = ()  # where a rule asks for less than the rows can tell apart from noise

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def with_history(self, history: Sequence[HistoryPoint]) -> Decision:
        """The same decision carrying earlier champions for the report's chart and table (the verdict never
        depends on them)."""
        return replace(self, history=tuple(history))

