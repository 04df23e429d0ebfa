"""Properties that must hold for every input, not only the hand-picked edges."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_bot.config.model import Criterion, Regression
from mlops_bot.decide.criteria import judge_criterion
from tests.helpers.decisions import champion

# Metrics as people write and read them: up to 4 decimals, within everyday magnitudes.
decimals = st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000"), places=4, allow_nan=False)
amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("100"), places=4, allow_nan=False)
STEP = Decimal("0.0001")


@settings(max_examples=300, deadline=None)
@given(c=decimals, a=amounts, up=st.booleans())
def test_exactly_the_required_change_passes_and_one_step_less_fails(c: Decimal, a: Decimal, up: bool) -> None:
    sign = 1 if up else -1
    rule = Criterion("m", greater_is_better=up, min_absolute_change=float(a))
    on_boundary = float(c + sign * a)
    short = float(c + sign * (a - STEP))
    assert judge_criterion(rule, {"m": on_boundary}, champion({"m": float(c)})).passed
    assert not judge_criterion(rule, {"m": short}, champion({"m": float(c)})).passed


@settings(max_examples=300, deadline=None)
@given(c=decimals, a=amounts, up=st.booleans())
def test_exactly_the_allowed_regression_passes_and_one_step_more_fails(c: Decimal, a: Decimal, up: bool) -> None:
    sign = -1 if up else 1
    rule = Criterion("m", greater_is_better=up, max_regression=Regression(absolute=float(a)))
    assert judge_criterion(rule, {"m": float(c + sign * a)}, champion({"m": float(c)})).passed
    assert not judge_criterion(rule, {"m": float(c + sign * (a + STEP))}, champion({"m": float(c)})).passed


@settings(max_examples=300, deadline=None)
@given(x=decimals, c=decimals, t=amounts, a=amounts, r=st.decimals(min_value=Decimal("0"), max_value=Decimal("1"),
                                                                    places=3, allow_nan=False))
def test_lower_is_better_mirrors_greater_is_better(x: Decimal, c: Decimal, t: Decimal, a: Decimal, r: Decimal) -> None:
    up = Criterion("m", threshold=float(t), min_absolute_change=float(a), min_relative_change=float(r),
                   max_regression=Regression(absolute=float(a), relative=float(r)))
    down = Criterion("m", greater_is_better=False, threshold=float(-t), min_absolute_change=float(a),
                     min_relative_change=float(r), max_regression=Regression(absolute=float(a), relative=float(r)))
    ours = judge_criterion(up, {"m": float(x)}, champion({"m": float(c)}))
    mirrored = judge_criterion(down, {"m": float(-x)}, champion({"m": float(-c)}))
    assert [k.passed for k in ours.checks] == [k.passed for k in mirrored.checks]


@settings(max_examples=200, deadline=None)
@given(x=decimals, better=amounts, c=decimals, a=amounts)
def test_a_better_challenger_never_fares_worse(x: Decimal, better: Decimal, c: Decimal, a: Decimal) -> None:
    rule = Criterion("m", threshold=0.5, min_absolute_change=float(a), max_regression=Regression(relative=0.05))
    base = champion({"m": float(c)})
    if judge_criterion(rule, {"m": float(x)}, base).passed:
        assert judge_criterion(rule, {"m": float(x + better)}, base).passed
