"""The check: a shifted feature is found and an unshifted one is not; missing columns, new categories, null-rate
changes and a column that changed kind are findings; the dataset rule; a signature that names what drifted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlops_bot.drift.check import check
from mlops_bot.errors import DataError
from tests.helpers.drift_tables import monitor, table

N = 4000


def batch(seed: int, label: str, shift: float = 0.0, **extra: object) -> object:
    rng = np.random.default_rng(seed)
    colours = list(rng.choice(["red", "green", "blue"], N, p=[0.5, 0.3, 0.2]))
    return table(label, age=rng.normal(40 + shift * 10, 10, N), income=rng.lognormal(10, 0.5, N),
                 colour=colours, **extra)


def test_a_shifted_feature_drifts_and_the_others_do_not() -> None:
    result = check(batch(1, "reference"), batch(2, "current", shift=1.0), monitor())
    by_name = {f.name: f for f in result.features}
    assert result.drifted and by_name["age"].drifted
    assert {t.name for t in by_name["age"].tests if t.drifted} == {"ks", "wasserstein", "psi"}
    assert not by_name["income"].drifted and not by_name["colour"].drifted
    assert [(f.kind, f.feature) for f in result.findings] == [("feature_drift", "age")]
    assert by_name["age"].bins is not None and len(by_name["age"].bins.labels) == 10


def test_no_drift_on_a_fresh_batch_of_the_same_data() -> None:
    result = check(batch(1, "reference"), batch(3, "current"), monitor())
    assert not result.drifted and result.findings == ()
    assert result.metrics()["drift.features_drifted"] == 0.0


def test_new_categories_and_null_rate_changes_are_findings() -> None:
    reference = batch(1, "reference")
    current = batch(2, "current")
    colours = list(current.columns["colour"])
    colours[:400] = ["purple"] * 300 + ["teal"] * 100  # 10% new values
    income = current.columns["income"].copy()
    income[:800] = np.nan  # 20% empty, was 0%
    current = table("current", age=current.columns["age"], income=income, colour=colours)
    result = check(reference, current, monitor())
    kinds = {(f.kind, f.feature) for f in result.findings}
    assert ("new_category", "colour") in kinds and ("null_rate", "income") in kinds
    new = next(f for f in result.findings if f.kind == "new_category")
    assert "2 value(s) the reference never holds, 10.0% of the current rows: 'purple', 'teal'" in new.description
    nulls = next(f for f in result.findings if f.kind == "null_rate")
    assert "from 0.0% to 20.0%" in nulls.description
    assert result.metrics()["drift.null_rate.income"] == pytest.approx(0.2)


def test_missing_features_are_findings_and_no_shared_column_is_an_error() -> None:
    reference = batch(1, "reference")
    current = table("current", age=reference.columns["age"], colour=list(reference.columns["colour"]))
    result = check(reference, current, monitor())  # no feature named: a column of the reference alone is noted
    assert result.findings == () and result.not_compared == ("income",)
    assert [f.name for f in result.features] == ["age", "colour"]
    named = check(reference, current, monitor(features=("age", "income")))
    assert [(f.kind, f.feature, f.detail) for f in named.findings] == [("missing_column", "income", "current")]
    assert named.not_compared == ()
    listed = check(reference, current, monitor(features=("age", "ghost")))
    assert {(f.feature, f.detail) for f in listed.findings} == {("ghost", "reference"), ("ghost", "current")}
    assert [f.name for f in listed.features] == ["age"]
    with pytest.raises(DataError) as caught:
        check(reference, table("current", other=np.zeros(3), thing=["a", "b", "c"]), monitor())
    message = str(caught.value)
    assert "reference.csv" in message and "current.csv" in message and "no column in common" in message
    assert "'age', 'income', 'colour'" in message and "'other', 'thing'" in message
    assert "set monitor.features" in message


def test_a_column_that_changed_kind_is_a_drifted_feature() -> None:
    reference = table("reference", v=np.arange(10, dtype=np.float64))
    current = table("current", v=[str(i) for i in range(10)])
    result = check(reference, current, monitor())
    assert result.drifted and result.features[0].changed
    assert [f.kind for f in result.findings] == ["kind_change"]


def test_the_dataset_rule_counts_features_or_their_share() -> None:
    reference, current = batch(1, "reference"), batch(2, "current", shift=1.0)
    assert check(reference, current, monitor(min_features=1)).drifted
    assert not check(reference, current, monitor(min_features=2)).drifted
    assert check(reference, current, monitor(min_features=None, min_share=0.33)).drifted
    assert not check(reference, current, monitor(min_features=None, min_share=0.34)).drifted


def test_the_signature_names_what_drifted_not_by_how_much() -> None:
    reference = batch(1, "reference")
    today = check(reference, batch(2, "current", shift=1.0), monitor())
    tomorrow = check(reference, batch(5, "current", shift=1.3), monitor())
    assert today.metrics()["drift.age.ks"] != tomorrow.metrics()["drift.age.ks"]
    assert today.signature() == tomorrow.signature()
    other = batch(6, "current", shift=1.0)
    wider = table("current", age=other.columns["age"], income=other.columns["income"] * 3,
                  colour=list(other.columns["colour"]))
    assert check(reference, wider, monitor()).signature() != today.signature()
    assert check(reference, batch(3, "current"), monitor()).signature() != today.signature()


def test_metrics_keys_are_mlflow_safe_and_json_is_plain() -> None:
    rng = np.random.default_rng(0)
    reference = table("reference", **{"a/b <c>|é": rng.normal(0, 1, 500)})
    current = table("current", **{"a/b <c>|é": rng.normal(2, 1, 500)})
    result = check(reference, current, monitor())
    keys = result.metrics()
    assert "drift.a_b _c___.ks" in keys and "drift.a_b _c___.ks.p_value" in keys
    assert all(set(k) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./ -") for k in keys)
    document = json.loads(result.to_json())
    assert document["drifted"] is True and document["signature"] == result.signature()
    assert document["features"][0]["tests"][0]["test"] == "ks"
