"""The criteria against MLflow's own `validate_evaluation_results` (issue #16), on the rules both have:
`threshold`, `min_absolute_change`, `min_relative_change` and `greater_is_better`.

A fixed-seed generator makes a few thousand criteria with a challenger's and a champion's values; each is judged
by `judge_criterion` and by MLflow (one `MetricThreshold`, `EvaluationResult`s for the candidate and the
baseline). On ordinary values the two must agree. Where they differ by design, `category` names the reason from
the case's values alone (not from how it was generated), and each category lists the directions it may take; a
disagreement outside them fails the test with the case. `pytest -s` prints the table of categories.

MLflow's semantics (mlflow/models/evaluation/validation.py, 3.x): the threshold compares the binary floats;
min_absolute_change compares Decimal(candidate) with Decimal(baseline +/- change) after the binary addition;
min_relative_change compares the float (candidate - baseline) / |baseline| with the fraction, and from a baseline
of 0 falls back to "better by 1e-10"; a missing candidate fails; a missing baseline fails the comparative rules
when there is no baseline result, and raises KeyError when the baseline has other metrics; NaN raises
decimal.InvalidOperation in the Decimal comparisons and passes the float one (NaN < x is False).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Context, Decimal

import mlflow  # imported once per module: about a second and a half
from mlflow.models import MetricThreshold
from mlflow.models.evaluation import EvaluationResult
from mlflow.models.evaluation.validation import ModelValidationFailedException

from mlops_bot.config.model import Criterion
from mlops_bot.decide.criteria import judge_criterion
from tests.helpers.decisions import champion as make_champion

METRIC = "score"
SEED = 16
NAN, INF = math.nan, math.inf
_CTX = Context(prec=200)  # exact for differences of repr decimals of any two doubles we generate
BOUNDARY_ULPS = 8  # twice mlops-bot's tolerance: binary rounding of MLflow's arithmetic stays well inside it


@dataclass(frozen=True)
class Case:
    family: str  # the generator that made it; printed with a failure, never used to classify
    greater_is_better: bool
    threshold: float | None
    min_absolute_change: float | None
    min_relative_change: float | None
    challenger: float | None  # None: the challenger logged no value
    champion: float | None  # None: the champion (when there is one) logged other metrics, not this one
    has_champion: bool = True

    @property
    def comparative(self) -> bool:
        return self.min_absolute_change is not None or self.min_relative_change is not None


# --- the two judges ---------------------------------------------------------------------------------------------

def mlops_bot_verdict(case: Case) -> str:
    criterion = Criterion(METRIC, greater_is_better=case.greater_is_better, threshold=case.threshold,
                          min_absolute_change=case.min_absolute_change,
                          min_relative_change=case.min_relative_change)
    challenger = {} if case.challenger is None else {METRIC: case.challenger}
    champion = None
    if case.has_champion:
        champion = make_champion({"other": 1.0} if case.champion is None else {METRIC: case.champion})
    return "pass" if judge_criterion(criterion, challenger, champion).passed else "fail"


def mlflow_verdict(case: Case) -> str:
    threshold = MetricThreshold(threshold=case.threshold, min_absolute_change=case.min_absolute_change,
                                min_relative_change=case.min_relative_change,
                                greater_is_better=case.greater_is_better)
    candidate = EvaluationResult({} if case.challenger is None else {METRIC: case.challenger}, {}, run_id="c")
    baseline = None
    if case.has_champion:
        baseline = EvaluationResult({"other": 1.0} if case.champion is None else {METRIC: case.champion}, {},
                                    run_id="b")
    try:
        mlflow.validate_evaluation_results({METRIC: threshold}, candidate, baseline)
    except ModelValidationFailedException:
        return "fail"
    except Exception as e:  # MLflow's crashes (KeyError, TypeError, InvalidOperation) are outcomes too
        return f"error ({type(e).__name__})"
    return "pass"


# --- the categories of disagreement ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Category:
    name: str
    directions: frozenset[tuple[str, str]]  # (mlops-bot, MLflow) pairs this reason can produce
    why: str  # why mlops-bot's answer is the right one


def _dirs(*pairs: tuple[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(pairs)


PASS_FAIL = ("pass", "fail")
CATEGORIES = {c.name: c for c in (
    Category("non-finite or missing challenger value",
             _dirs(("fail", "pass"), ("fail", "error (InvalidOperation)"), ("fail", "error (TypeError)")),
             "NaN or inf is a broken evaluation, not a score: MLflow passes inf as beyond any threshold or change "
             "and NaN against min_relative_change (NaN < x is False), or crashes comparing NaN as a Decimal (with "
             "no champion, subtracting None), so a diverged model could be promoted; mlops-bot fails it and says "
             "what was logged."),
    Category("no champion (bootstrap)",
             _dirs(PASS_FAIL, ("pass", "error (TypeError)"), ("fail", "error (TypeError)")),
             "With no champion there is nothing to beat: mlops-bot applies the thresholds and says the comparative "
             "rules were not applied (bootstrap), where MLflow fails them as 'missing from the baseline' (or "
             "crashes with TypeError for min_relative_change 0 alone), so the first model could never be promoted."),
    Category("champion lacks the metric",
             _dirs(("pass", "error (KeyError)"), ("fail", "error (KeyError)")),
             "MLflow indexes the baseline's metrics directly and crashes with KeyError, even for a threshold that "
             "needs no baseline; mlops-bot judges the threshold alone, and fails a comparative rule with a reason "
             "that names the metric the champion did not log."),
    Category("non-finite champion value",
             _dirs(("fail", "pass"), ("fail", "error (InvalidOperation)")),
             "A champion at NaN or inf gives nothing to compare with: MLflow's relative change becomes NaN, which "
             "passes any min_relative_change, -inf passes any min_absolute_change, and NaN crashes its Decimal "
             "comparison; mlops-bot fails the comparison and says the champion's value is unusable."),
    Category("zero baseline",
             _dirs(PASS_FAIL),
             "Any gain over a champion at 0 is an unbounded relative gain, so a strictly better challenger meets "
             "every min_relative_change; MLflow substitutes an absolute 1e-10, which fails real improvements "
             "smaller than that and an equal challenger even when min_relative_change is 0 (asking for no gain)."),
    Category("decimal boundary: mlops-bot compares the printed decimals, MLflow the binary floats",
             _dirs(PASS_FAIL),
             "ml.yaml and the logged metrics are written in decimals, and in those decimals the challenger sits "
             "exactly on the boundary, which the rule says passes; MLflow's verdict depends on which way the "
             "binary rounding of baseline + change or of the relative change happens to fall."),
    Category("binary rounding: within mlops-bot's 4-ulp tolerance of the boundary",
             _dirs(PASS_FAIL),
             "A value computed in binary misses its decimal by a few units in the last place (0.1 + 0.2 logs as "
             "0.30000000000000004), so a shortfall of ~1e-16 relative is rounding, not a regression; failing it "
             "would make the verdict depend on the order of a sum in the user's evaluation code."),
)}


def _d(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def _near(margin: Decimal, *operands: float) -> str | None:
    """'exact' when the rule's decimal margin is 0, 'near' within BOUNDARY_ULPS ulps of the largest operand."""
    if margin == 0:
        return "exact"
    scale = max(abs(v) for v in operands)
    return "near" if abs(margin) <= Decimal(BOUNDARY_ULPS * math.ulp(scale)) else None


def _boundaries(case: Case) -> set[str]:
    """How close each rule is to its boundary, on the printed decimals (None: not close)."""
    x, c, up = case.challenger, case.champion, case.greater_is_better
    assert x is not None and math.isfinite(x)
    sign = 1 if up else -1
    found = set()
    if case.threshold is not None:
        found.add(_near(sign * _CTX.subtract(_d(x), _d(case.threshold)), x, case.threshold))
    if c is not None and math.isfinite(c):
        gain = sign * _CTX.subtract(_d(x), _d(c))
        if case.min_absolute_change is not None:
            need = case.min_absolute_change
            found.add(_near(_CTX.subtract(gain, _d(need)), x, c, need, c + sign * need))
        if case.min_relative_change is not None and c != 0:
            share = _CTX.multiply(_d(case.min_relative_change), _d(abs(c)))
            found.add(_near(_CTX.subtract(gain, share), x, c, float(share)))
    return found - {None}


def category(case: Case) -> str | None:
    """The edge feature of a case that explains a disagreement, by precedence; None for an ordinary case."""
    if case.challenger is None or not math.isfinite(case.challenger):
        return "non-finite or missing challenger value"
    if not case.has_champion and case.comparative:
        return "no champion (bootstrap)"
    if case.has_champion and case.champion is None:
        return "champion lacks the metric"
    if case.comparative and case.champion is not None and not math.isfinite(case.champion):
        return "non-finite champion value"
    if case.min_relative_change is not None and case.champion == 0:
        return "zero baseline"
    near = _boundaries(case)
    if "exact" in near:
        return "decimal boundary: mlops-bot compares the printed decimals, MLflow the binary floats"
    if "near" in near:
        return "binary rounding: within mlops-bot's 4-ulp tolerance of the boundary"
    return None


# --- the generated cases ---------------------------------------------------------------------------------------

def _value(rng: random.Random) -> float:
    """A metric value as evaluation code logs them: proportions, scores, losses (some negative), latencies."""
    kind = rng.randrange(6)
    if kind == 0:
        return round(rng.random(), rng.choice([2, 3, 4, 6]))
    if kind == 1:
        return rng.random()
    if kind == 2:
        return round(rng.uniform(-1.0, 1.0), rng.choice([2, 3, 17]))  # R2, correlations
    if kind == 3:
        return round(rng.uniform(1.0, 2000.0), rng.choice([0, 1, 2, 5]))
    if kind == 4:
        return rng.choice([-1, 1]) * 10 ** rng.uniform(-6, 6)
    return -round(rng.uniform(0.0, 50.0), rng.choice([1, 3, 9]))  # negative log-likelihoods


def _rules(rng: random.Random, x: float, c: float, up: bool) -> tuple[float | None, float | None, float | None]:
    """Threshold and change rules around the values, so that both verdicts occur; at least one rule."""
    spread = max(abs(x), abs(c), 1e-9)
    while True:
        t = mac = mrc = None
        if rng.random() < 0.5:
            t = x + rng.uniform(-0.1, 0.1) * spread if rng.random() < 0.7 else _value(rng)
            t = round(t, rng.choice([2, 4, 17]))
        if rng.random() < 0.45:
            mac = abs(x - c) * rng.uniform(0.5, 1.5) or 0.01
            mac = round(mac, rng.choice([3, 6, 17])) or mac
        if rng.random() < 0.45:
            mrc = rng.choice([0.0, 1.0, round(rng.uniform(0.0, 0.3), 2), rng.uniform(0.0, 1.0),
                              min(1.0, abs(x - c) / abs(c) * rng.uniform(0.5, 1.5)) if c else 0.05])
        if t is not None or mac is not None or mrc is not None:
            return t, mac, mrc


def _ordinary(rng: random.Random) -> Case:
    c = _value(rng)
    x = c + rng.uniform(-0.3, 0.3) * max(abs(c), 1e-6)
    if rng.random() < 0.5:
        x = round(x, rng.choice([3, 5, 8]))
    up = rng.random() < 0.6
    return Case("ordinary", up, *_rules(rng, x, c, up), challenger=x, champion=c)


def _decimal(rng: random.Random, digits: int = 4) -> Decimal:
    return Decimal(rng.randint(1, 10 ** digits - 1)).scaleb(-rng.randint(1, digits + 1))


def _boundary(rng: random.Random) -> Case:
    """A challenger exactly on a decimal boundary, or on it as binary arithmetic computes it (0.1 + 0.2)."""
    up = rng.random() < 0.5
    sign = 1 if up else -1
    binary = rng.random() < 0.5  # the challenger's value is the boundary computed in floats, else in decimals
    dc = _decimal(rng) * rng.choice([1, 1, 1, -1])
    c = float(dc)
    rule = rng.randrange(3)
    if rule == 0:
        a, b = _decimal(rng), _decimal(rng) * sign
        t, x = float(a + b), float(a) + float(b)
        if rng.random() < 0.5:
            t, x = x, t
        return Case("boundary", up, t, None, None, challenger=x, champion=c)
    if rule == 1:
        dm = _decimal(rng, 3)
        x = c + sign * float(dm) if binary else float(dc + sign * dm)
        t = x - sign * rng.uniform(0.0, 1.0) if rng.random() < 0.3 else None
        return Case("boundary", up, t, float(dm), None, challenger=x, champion=c)
    dr = Decimal(rng.randint(1, 100)).scaleb(-rng.randint(2, 3))
    x = c + sign * float(dr) * abs(c) if binary else float(dc + sign * dr * abs(dc))
    return Case("boundary", up, None, None, float(dr), challenger=x, champion=c)


def _zero(rng: random.Random) -> Case:
    up = rng.random() < 0.5
    x = rng.choice([0.0, 1e-300, 1e-12, 5e-11, 1e-10, 2e-10, 1e-6, 0.3, abs(_value(rng))]) * rng.choice([1, -1])
    mrc = rng.choice([0.0, 0.05, 0.5, 1.0, rng.random()])
    t = rng.choice([None, None, -1.0 if up else 1.0])
    return Case("zero baseline", up, t, None, mrc, challenger=x, champion=rng.choice([0.0, -0.0]))


def _non_finite_challenger(rng: random.Random) -> Case:
    case = _ordinary(rng)
    return Case("non-finite challenger", case.greater_is_better, case.threshold, case.min_absolute_change,
                case.min_relative_change, challenger=rng.choice([NAN, INF, -INF, None]), champion=case.champion,
                has_champion=rng.random() < 0.8)


def _non_finite_champion(rng: random.Random) -> Case:
    case = _ordinary(rng)
    mac, mrc = case.min_absolute_change, case.min_relative_change
    if mac is None and mrc is None:
        mac, mrc = (0.01, None) if rng.random() < 0.5 else (None, 0.1)
    return Case("non-finite champion", case.greater_is_better, case.threshold, mac, mrc,
                challenger=case.challenger, champion=rng.choice([NAN, INF, -INF]))


def _champion_lacks(rng: random.Random) -> Case:
    case = _ordinary(rng)
    return Case("champion lacks the metric", case.greater_is_better, case.threshold, case.min_absolute_change,
                case.min_relative_change, challenger=case.challenger, champion=None)


def _bootstrap(rng: random.Random) -> Case:
    case = _ordinary(rng)
    return Case("bootstrap", case.greater_is_better, case.threshold, case.min_absolute_change,
                case.min_relative_change, challenger=case.challenger, champion=None, has_champion=False)


FIXED = [  # the examples, checked in every run whatever the seed
    Case("fixed", True, None, 0.005, None, challenger=0.905, champion=0.9),  # 0.9 + 0.005 == 0.905 in binary too
    Case("fixed", True, None, 0.2, None, challenger=0.3, champion=0.1),  # 0.1 + 0.2 > 0.3 in binary
    Case("fixed", False, 0.3, None, None, challenger=0.1 + 0.2, champion=0.5),
    Case("fixed", True, None, None, 0.1, challenger=0.55, champion=0.5),
    Case("fixed", True, None, None, 0.05, challenger=1e-12, champion=0.0),
    Case("fixed", False, None, None, 0.0, challenger=0.0, champion=0.0),
    Case("fixed", True, 0.9, None, None, challenger=INF, champion=0.5),
    Case("fixed", True, None, None, 0.1, challenger=NAN, champion=0.5),
    Case("fixed", True, None, None, 0.1, challenger=-0.45, champion=-0.5),
]
FAMILIES = [(_ordinary, 2500), (_boundary, 1000), (_zero, 300), (_non_finite_challenger, 200),
            (_non_finite_champion, 150), (_champion_lacks, 100), (_bootstrap, 250)]


def generated_cases(seed: int = SEED) -> list[Case]:
    rng = random.Random(seed)
    return FIXED + [make(rng) for make, count in FAMILIES for _ in range(count)]


# --- the test --------------------------------------------------------------------------------------------------

def test_criteria_agree_with_mlflow_validate_evaluation_results_except_by_design() -> None:
    logging.getLogger("mlflow.models.evaluation.validation").setLevel(logging.ERROR)  # its zero-baseline warning
    start = time.perf_counter()
    cases = generated_cases()
    ordinary = unknown = 0
    problems: list[str] = []
    table: Counter[tuple[str, str, str]] = Counter()
    for case in cases:
        ours, theirs = mlops_bot_verdict(case), mlflow_verdict(case)
        name = category(case)
        ordinary += name is None
        if ours == theirs:
            continue
        if name is None:
            problems.append(f"ordinary case, mlops-bot {ours} / MLflow {theirs}: {case}")
        elif (ours, theirs) not in CATEGORIES[name].directions:
            unknown += 1
            problems.append(f"{name}, unexpected mlops-bot {ours} / MLflow {theirs}: {case}")
        else:
            table[(name, ours, theirs)] += 1
    elapsed = time.perf_counter() - start

    print(f"\n{len(cases)} cases ({ordinary} ordinary, all agreeing), {sum(table.values())} disagreements by design, "
          f"{elapsed:.2f} s (after importing mlflow)")
    for name, why in ((c.name, c.why) for c in CATEGORIES.values()):
        rows = {k: n for k, n in table.items() if k[0] == name}
        directions = ", ".join(f"mlops-bot {o} / MLflow {t}: {n}" for (_, o, t), n in sorted(rows.items()))
        print(f"- {name}: {sum(rows.values())} ({directions or 'none'})\n    {why}")

    assert not problems, "\n".join(problems[:20])
    assert ordinary >= 2000  # the random values mostly stay clear of the edges
    seen = {name for name, _, _ in table}
    assert seen == set(CATEGORIES), f"categories never disagreeing in this run: {set(CATEGORIES) - seen}"
