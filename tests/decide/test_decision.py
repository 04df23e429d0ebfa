"""decide(): verdicts, summaries, bootstrap, significance gating, bad input; the Decision's JSON form."""

from __future__ import annotations

import json
import math
import re

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_bot.config.model import Criterion, Significance
from mlops_bot.decide.decision import ParamChange, SignificanceResult
from mlops_bot.decide.document import from_document, to_document
from mlops_bot.decide.verdict import decide, params_diff
from mlops_bot.errors import DataError, UsageError
from tests.helpers.decisions import (
    ACCURACY,
    DECISION_SCHEMA,
    DECISION_VALIDATOR,
    LATENCY,
    NOW,
    challenger,
    champion,
    compare_of,
    sample_decision,
)

SIG = Significance(("accuracy",), test="paired_bootstrap", alpha=0.05)


def significance(significant: bool) -> SignificanceResult:
    return SignificanceResult(metric="accuracy", test="paired_bootstrap", method="percentile bootstrap, 10000 "
                              "resamples, seed 0", alpha=0.05, n=500, observed=0.012, significant=significant,
                              reason="accuracy difference +0.012 ...", ci_low=-0.002 if not significant else 0.004,
                              ci_high=0.026)


def test_all_criteria_pass() -> None:
    d = sample_decision()
    assert (d.verdict, d.bootstrap) == ("pass", False)
    assert d.summary == "The challenger passes all 2 criteria against champion v3."
    assert d.created_at == "2025-03-01T12:00:00Z"


def test_one_failing_criterion_fails_the_verdict_and_is_named() -> None:
    d = decide("m", compare_of(ACCURACY, LATENCY), challenger({"accuracy": 0.95, "latency_ms": 150.0}),
               champion({"accuracy": 0.94, "latency_ms": 100.0}), now=NOW)
    assert d.verdict == "fail"
    assert d.summary == "The challenger fails 1 of 2 criteria against champion v3: latency_ms."
    assert [r.passed for r in d.criteria] == [True, False]


def test_single_criterion_wording() -> None:
    d = decide("m", compare_of(ACCURACY), challenger({"accuracy": 0.95}), champion({"accuracy": 0.94}), now=NOW)
    assert d.summary == "The challenger passes its criterion (accuracy) against champion v3."


def test_bootstrap_judges_thresholds_only_and_says_so() -> None:
    d = decide("m", compare_of(ACCURACY, LATENCY, significance=SIG),
               challenger({"accuracy": 0.92, "latency_ms": 900.0}), None, now=NOW)
    assert (d.verdict, d.bootstrap, d.champion, d.significance) == ("pass", True, None, ())
    assert d.summary == ("No champion yet (bootstrap), so only absolute thresholds apply. The challenger passes all "
                         "2 criteria. Significance was not tested: there is no champion to compare with.")
    low = decide("m", compare_of(ACCURACY), challenger({"accuracy": 0.85}), None, now=NOW)
    assert low.verdict == "fail"
    assert low.criteria[0].reason.startswith("accuracy 0.85 < threshold 0.9")


def test_not_significant_improvement_fails() -> None:
    d = decide("m", compare_of(ACCURACY, significance=SIG), challenger({"accuracy": 0.95}),
               champion({"accuracy": 0.94}), significance=(significance(False),), now=NOW)
    assert d.verdict == "fail"
    assert all(r.passed for r in d.criteria)
    assert d.summary == ("The challenger passes its criterion (accuracy) against champion v3. "
                         "It shows no significant improvement in accuracy at alpha 0.05.")
    ok = decide("m", compare_of(ACCURACY, significance=SIG), challenger({"accuracy": 0.95}),
                champion({"accuracy": 0.94}), significance=(significance(True),), now=NOW)
    assert ok.verdict == "pass"


def test_significance_configured_without_a_result_is_an_error_never_a_pass() -> None:
    with pytest.raises(DataError, match=r"compare\.significance is configured for 'accuracy' but no significance"):
        decide("m", compare_of(ACCURACY, significance=SIG), challenger({"accuracy": 0.99}),
               champion({"accuracy": 0.9}), now=NOW)


def test_a_metric_nobody_logged_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(DataError) as caught:
        decide("m", compare_of(Criterion("acuracy", threshold=0.9)), challenger({"accuracy": 0.95}),
               champion({"accuracy": 0.9}), now=NOW)
    assert str(caught.value) == ("compare.criteria: metric 'acuracy' was logged by neither the challenger nor "
                                 "the champion; fix the name in ml.yaml or make the evaluation write it "
                                 "(did you mean 'accuracy'?)")
    assert caught.value.exit_code == 3
    with pytest.raises(DataError, match=r"'f1' was not logged by the challenger \(and there is no champion yet\); "
                                        r".*\(logged: accuracy.\)"):
        decide("m", compare_of(Criterion("f1", threshold=0.9)), challenger({"accuracy": 0.95}), None, now=NOW)


def test_a_metric_only_the_champion_logged_fails_with_a_reason() -> None:
    d = decide("m", compare_of(ACCURACY), challenger({"f1": 0.9}), champion({"accuracy": 0.9}), now=NOW)
    assert d.verdict == "fail"
    assert d.criteria[0].reason == "accuracy: the challenger logged no value for it, which cannot pass"


def test_nan_challenger_fails_where_mlflow_would_pass() -> None:
    rule = Criterion("accuracy", min_relative_change=0.01)
    d = decide("m", compare_of(rule), challenger({"accuracy": math.nan}), champion({"accuracy": 0.9}), now=NOW)
    assert d.verdict == "fail"


def test_empty_criteria_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"compare\.criteria is empty"):
        decide("m", compare_of(), challenger({"accuracy": 0.9}), None, now=NOW)


def test_params_diff() -> None:
    assert params_diff({"C": "1.0", "seed": "1", "old": "x"}, {"C": "0.5", "seed": "1", "new": "y"}) == (
        ParamChange("C", "1.0", "0.5"), ParamChange("new", None, "y"), ParamChange("old", "x", None))
    assert sample_decision().params_diff == (ParamChange("C", "1.0", "0.5"), ParamChange("solver", "lbfgs", None))


def test_json_round_trip_and_schema() -> None:
    d = decide("m", compare_of(ACCURACY, LATENCY, significance=SIG),
               challenger({"accuracy": math.nan, "latency_ms": math.inf}),
               champion({"accuracy": 0.9, "latency_ms": -math.inf}, rescored={"accuracy": 0.91}),
               significance=(significance(True),), now=NOW)
    doc = to_document(d)
    text = json.dumps(doc, allow_nan=False)  # strict JSON: non-finite values travel as strings
    jsonschema.validate(json.loads(text), DECISION_SCHEMA)
    assert doc["challenger"]["metrics"] == {"accuracy": "NaN", "latency_ms": "Infinity"}
    back = from_document(json.loads(text))
    assert to_document(back) == doc
    assert math.isnan(back.challenger.metrics["accuracy"])
    jsonschema.validate(to_document(sample_decision()), DECISION_SCHEMA)


@pytest.mark.parametrize(("where", "value", "message"), [
    (("verdict",), "passed", "verdict is 'passed', not one of pass, fail"),
    (("criteria", 0, "baseline"), "today", "baseline is 'today', not one of rescored, logged"),
    (("criteria", 0, "checks", 0, "rule"), "thresold", "rule is 'thresold', not one of threshold, "),
    (("significance", 0, "test"), "t_test", "significance test is 't_test', not one of paired_bootstrap, mcnemar"),
])
def test_a_name_outside_its_literal_type_is_not_a_decision(where: tuple[str | int, ...], value: str,
                                                           message: str) -> None:
    d = decide("m", compare_of(ACCURACY, significance=SIG), challenger({"accuracy": 0.95}),
               champion({"accuracy": 0.9}), significance=(significance(True),), now=NOW)
    doc = json.loads(json.dumps(to_document(d)))
    node = doc
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(ValueError, match=re.escape(message)):
        from_document(doc)


def test_schema_describes_every_property() -> None:
    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                assert "description" in sub, f"{where}.{name} has no description"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(DECISION_SCHEMA, "$")
    jsonschema.Draft202012Validator.check_schema(DECISION_SCHEMA)


metric_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(0.0))


@settings(max_examples=100, deadline=None)
@given(x=metric_values, c=metric_values, t=st.floats(0, 10), a=st.floats(0, 10))
def test_every_decision_validates_and_round_trips(x: float, c: float, t: float, a: float) -> None:
    rule = Criterion("m", threshold=t, min_absolute_change=a, min_relative_change=a / 10)
    d = decide("m", compare_of(rule), challenger({"m": x}), champion({"m": c}), now=NOW)
    doc = json.loads(json.dumps(to_document(d), allow_nan=False))
    DECISION_VALIDATOR.validate(doc)
    assert to_document(from_document(doc)) == to_document(d)
    assert d.verdict == ("pass" if d.criteria[0].passed else "fail")
    if not math.isfinite(x):
        assert d.verdict == "fail"
