"""Each rule's edges, with the exact verdict and the exact words a reviewer reads."""

from __future__ import annotations

import math

import pytest

from mlops_bot.config.model import Criterion, Regression
from mlops_bot.decide.criteria import judge_criterion
from tests.helpers.decisions import champion

NAN, INF = math.nan, math.inf
ABSENT = object()

CASES = [
    # thresholds: a floor when greater is better, a ceiling otherwise; the boundary passes
    (Criterion("accuracy", threshold=0.9), 0.9, None, True, "accuracy 0.9 >= threshold 0.9"),
    (Criterion("accuracy", threshold=0.9), 0.8999999, None, False, "accuracy 0.8999999 < threshold 0.9"),
    (Criterion("accuracy", threshold=0.905), 0.9049999, None, False, "accuracy 0.9049999 < threshold 0.905"),
    (Criterion("latency_ms", greater_is_better=False, threshold=150), 150.0, None, True,
     "latency_ms 150 <= threshold 150"),
    (Criterion("latency_ms", greater_is_better=False, threshold=150), 150.0001, None, False,
     "latency_ms 150.0001 > threshold 150"),
    # min_absolute_change: exact on the printed decimals, where binary floats say 0.905 - 0.9 < 0.005
    (Criterion("accuracy", threshold=0.9, min_absolute_change=0.005), 0.905, 0.9, True,
     "accuracy 0.905 >= threshold 0.9; +0.005 vs champion v3 (0.9), needs +0.005"),
    (Criterion("accuracy", threshold=0.9, min_absolute_change=0.005), 0.9049, 0.9, False,
     "accuracy 0.9049 >= threshold 0.9; +0.0049 vs champion v3 (0.9), needs +0.005"),
    (Criterion("accuracy", min_absolute_change=0.2), 0.3, 0.1, True, "+0.2 vs champion v3 (0.1), needs +0.2"),
    (Criterion("accuracy", min_absolute_change=0.01), 0.93, 0.94, False, "-0.01 vs champion v3 (0.94), needs +0.01"),
    (Criterion("loss", greater_is_better=False, min_absolute_change=0.05), 0.25, 0.3, True,
     "-0.05 vs champion v3 (0.3), needs -0.05"),
    (Criterion("loss", greater_is_better=False, min_absolute_change=0.05), 0.26, 0.3, False,
     "-0.04 vs champion v3 (0.3), needs -0.05"),
    (Criterion("margin", min_absolute_change=0.005), -0.5, -0.505, True,
     "+0.005 vs champion v3 (-0.505), needs +0.005"),
    # a value computed in binary (0.1 + 0.2 = 0.30000000000000004) sits within the ulp tolerance
    (Criterion("accuracy", min_absolute_change=0.2), 0.1 + 0.2, 0.1, True, "+0.2 vs champion v3 (0.1), needs +0.2"),
    # min_relative_change: relative to |champion|
    (Criterion("accuracy", min_relative_change=0.01), 0.909, 0.9, True, "+1% vs champion v3 (0.9), needs +1%"),
    (Criterion("accuracy", min_relative_change=0.01), 0.9089, 0.9, False, "+0.989% vs champion v3 (0.9), needs +1%"),
    (Criterion("loss", greater_is_better=False, min_relative_change=0.1), 0.27, 0.3, True,
     "-10% vs champion v3 (0.3), needs -10%"),
    (Criterion("margin", min_relative_change=0.1), -0.45, -0.5, True, "+10% vs champion v3 (-0.5), needs +10%"),
    # zero baseline: any gain over 0 is an unbounded relative gain; no gain is none
    (Criterion("accuracy", min_relative_change=0.01), 0.5, 0.0, True,
     "0.5 vs champion v3 (0): better than 0 by any fraction, so the 1% needed is met"),
    (Criterion("loss", greater_is_better=False, min_relative_change=0.5), -0.001, 0.0, True,
     "-0.001 vs champion v3 (0): better than 0 by any fraction, so the 50% needed is met"),
    (Criterion("accuracy", min_relative_change=0.01), 0.0, 0.0, False,
     "0 is no better than champion v3 (0); a relative gain over 0 needs the challenger strictly better"),
    (Criterion("loss", greater_is_better=False, min_relative_change=0.01), 0.2, 0.0, False,
     "0.2 is worse than champion v3 (0); a relative gain over 0 needs the challenger strictly better"),
    (Criterion("accuracy", min_relative_change=0.01, min_absolute_change=0.1), 0.05, 0.0, False,
     "+0.05 vs champion v3 (0), needs +0.1; 0.05 vs champion v3 (0): better than 0 by any fraction, so the "
     "1% needed is met"),
    (Criterion("error_rate", greater_is_better=False, max_regression=Regression(relative=0.1)), 0.0, 0.0, True,
     "error_rate 0 is not worse than champion v3 (0)"),
    (Criterion("error_rate", greater_is_better=False, max_regression=Regression(relative=0.1)), 0.01, 0.0, False,
     "error_rate 0.01 is worse than champion v3's 0, and a relative tolerance of 0 is undefined; "
     "add max_regression.absolute to judge it"),
    (Criterion("error_rate", greater_is_better=False, max_regression=Regression(relative=0.1, absolute=0.02)),
     0.01, 0.0, True,
     "error_rate 0.01 is 0.01 worse than champion v3 (0); at most 0.02 allowed; a relative tolerance of "
     "champion v3's error_rate of 0 is undefined, so max_regression.absolute alone judges it"),
    # max_regression: guard metrics may get worse by at most that much; both limits must hold
    (Criterion("latency_ms", greater_is_better=False, max_regression=Regression(relative=0.1)), 132.0, 120.0, True,
     "latency_ms 132 is 10% worse than champion v3 (120); at most 10% allowed"),
    (Criterion("latency_ms", greater_is_better=False, max_regression=Regression(relative=0.1)), 132.1, 120.0, False,
     "latency_ms 132.1 is 10.1% worse than champion v3 (120); at most 10% allowed"),
    (Criterion("latency_ms", greater_is_better=False, max_regression=Regression(absolute=5)), 110.0, 120.0, True,
     "latency_ms 110 is not worse than champion v3 (120)"),
    (Criterion("latency_ms", greater_is_better=False, max_regression=Regression(absolute=5, relative=0.01)),
     124.0, 120.0, False,
     "latency_ms 124 is 4 worse than champion v3 (120); at most 5 allowed; "
     "latency_ms 124 is 3.33% worse than champion v3 (120); at most 1% allowed"),
    (Criterion("accuracy", max_regression=Regression(absolute=0.01)), 0.93, 0.94, True,
     "accuracy 0.93 is 0.01 worse than champion v3 (0.94); at most 0.01 allowed"),
    (Criterion("accuracy", max_regression=Regression(absolute=0.01)), 0.9299, 0.94, False,
     "accuracy 0.9299 is 0.0101 worse than champion v3 (0.94); at most 0.01 allowed"),
    # unusable challenger values fail, whatever the rules
    (Criterion("accuracy", threshold=0.9), NAN, 0.9, False, "accuracy: the challenger logged NaN, which cannot pass"),
    (Criterion("accuracy", threshold=0.9), INF, 0.9, False, "accuracy: the challenger logged inf, which cannot pass"),
    (Criterion("latency_ms", greater_is_better=False, threshold=100), -INF, 50.0, False,
     "latency_ms: the challenger logged -inf, which cannot pass"),
    (Criterion("accuracy", threshold=0.9), ABSENT, 0.9, False,
     "accuracy: the challenger logged no value for it, which cannot pass"),
    # an unusable champion value fails comparative rules, but not a threshold-only criterion
    (Criterion("accuracy", min_absolute_change=0.0), 0.9, NAN, False,
     "accuracy: champion v3 logged NaN, so the challenger cannot be compared with it"),
    (Criterion("accuracy", min_absolute_change=0.0), 0.9, ABSENT, False,
     "accuracy: champion v3 logged no value for it, so the challenger cannot be compared with it"),
    (Criterion("accuracy", threshold=0.9), 0.95, NAN, True, "accuracy 0.95 >= threshold 0.9"),
]


@pytest.mark.parametrize(("criterion", "x", "c", "passed", "reason"), CASES)
def test_rule(criterion: Criterion, x: object, c: object, passed: bool, reason: str) -> None:
    mine = {} if x is ABSENT else {criterion.metric: x}
    theirs = champion({} if c is ABSENT else {criterion.metric: c})  # type: ignore[dict-item]
    result = judge_criterion(criterion, mine, theirs)  # type: ignore[arg-type]
    assert (result.passed, result.reason) == (passed, reason)
    assert result.passed == all(check.passed for check in result.checks)


def test_no_champion_applies_thresholds_only() -> None:
    result = judge_criterion(Criterion("accuracy", threshold=0.8, min_absolute_change=0.01), {"accuracy": 0.95}, None)
    assert result.passed
    assert result.reason == ("accuracy 0.95 >= threshold 0.8; "
                             "no champion yet (bootstrap): min_absolute_change not applied")
    assert [c.rule for c in result.checks] == ["threshold", "bootstrap"]
    assert (result.champion, result.change, result.baseline) == (None, None, None)


def test_bootstrap_still_fails_a_threshold() -> None:
    result = judge_criterion(Criterion("accuracy", threshold=0.8, min_absolute_change=0.01), {"accuracy": 0.7}, None)
    assert not result.passed
    assert result.reason.startswith("accuracy 0.7 < threshold 0.8")


def test_rescored_value_is_the_baseline_and_is_named() -> None:
    theirs = champion({"accuracy": 0.9, "latency_ms": 100.0}, rescored={"accuracy": 0.93})
    result = judge_criterion(Criterion("accuracy", min_absolute_change=0.01), {"accuracy": 0.95}, theirs)
    assert (result.passed, result.champion, result.baseline) == (True, 0.93, "rescored")
    assert result.reason == "+0.02 vs champion v3 (0.93, rescored), needs +0.01"
    # a metric the rescoring did not produce falls back to the logged value
    guard = judge_criterion(Criterion("latency_ms", greater_is_better=False, max_regression=Regression(absolute=1)),
                  {"latency_ms": 100.5}, theirs)
    assert (guard.passed, guard.champion, guard.baseline) == (True, 100.0, "logged")


def test_rescored_worse_than_logged_judges_on_todays_data() -> None:
    # logged 0.95 would fail a +0.01 rule for 0.955; today's data rescored the champion to 0.93
    theirs = champion({"accuracy": 0.95}, rescored={"accuracy": 0.93})
    assert judge_criterion(Criterion("accuracy", min_absolute_change=0.01), {"accuracy": 0.955}, theirs).passed


def test_change_and_percentage() -> None:
    result = judge_criterion(Criterion("accuracy", threshold=0.5), {"accuracy": 0.951}, champion({"accuracy": 0.939}))
    assert result.change == pytest.approx(0.012, abs=1e-15)
    assert result.change_pct == pytest.approx(100 * 0.012 / 0.939)
    zero = judge_criterion(Criterion("accuracy", threshold=0.0), {"accuracy": 0.1}, champion({"accuracy": 0.0}))
    assert (zero.change, zero.change_pct) == (0.1, None)


def test_criterion_descriptions() -> None:
    from mlops_bot.decide.criteria import describe

    assert describe(Criterion("a", threshold=0.9, min_absolute_change=0.005)) == ">= 0.9; +0.005 vs champion"
    assert describe(Criterion("l", greater_is_better=False, threshold=150, min_relative_change=0.02)) == \
        "<= 150; -2% vs champion"
    assert describe(Criterion("l", greater_is_better=False, max_regression=Regression(absolute=5, relative=0.1))) == \
        "at most 5 and 10% worse"
    assert describe(Criterion("a")) == "logged"


def test_criterion_without_rules_only_needs_a_value() -> None:
    result = judge_criterion(Criterion("f1"), {"f1": 0.5}, None)
    assert result.reason == "f1 0.5 is logged (no threshold or change rule)"
    assert not judge_criterion(Criterion("f1"), {"f1": NAN}, None).passed
