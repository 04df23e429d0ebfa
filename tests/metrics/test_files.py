"""Metrics and predictions files: every accepted shape, and a clear error naming file and key or line."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_bot.errors import DataError
from mlops_bot.metrics.files import paired_scores, read_metrics, read_predictions


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "text"), [
    ("m.json", '{"accuracy": 0.95, "latency_ms": 12}'),
    ("m.yaml", "accuracy: 0.95\nlatency_ms: 12\n"),
    ("m.yml", "{accuracy: 0.95, latency_ms: 12}"),
    ("m.csv", "accuracy,latency_ms\n0.95,12\n"),
    ("m.csv", "metric,value\naccuracy,0.95\nlatency_ms,12\n"),
    ("m.csv", "\ufeffname,value\r\naccuracy, 0.95\r\nlatency_ms,12\r\n"),
    ("metrics", '{"accuracy": 0.95, "latency_ms": 12}'),
])
def test_accepted_shapes(tmp_path: Path, name: str, text: str) -> None:
    assert read_metrics(write(tmp_path, name, text)) == {"accuracy": 0.95, "latency_ms": 12.0}


def test_nested_mappings_flatten_to_dotted_names(tmp_path: Path) -> None:
    path = write(tmp_path, "m.json", '{"test": {"acc": 0.9, "f1": {"macro": 0.8}}, "n": 3}')
    assert read_metrics(path) == {"test.acc": 0.9, "test.f1.macro": 0.8, "n": 3.0}


@pytest.mark.parametrize(("name", "text", "message"), [
    ("m.json", "", "{path}: metrics file is empty."),
    ("m.json", "  \n", "{path}: metrics file is empty."),
    ("m.json", "[0.9, 0.8]", "{path}: holds a list, not a mapping of metric names to numbers."),
    ("m.yaml", "0.95\n", "{path}: holds a float, not a mapping of metric names to numbers."),
    ("m.json", "{}", "{path}: holds no metrics; write at least one `name: number` pair."),
    ("m.json", '{"accuracy": "0.95"}',
     "{path}: metric 'accuracy': '0.95' is a string, not a number; write it unquoted."),
    ("m.json", '{"accuracy": NaN}', "{path}: metric 'accuracy': NaN is not a finite number; the evaluation produced "
                                    "no usable value."),
    ("m.json", '{"accuracy": Infinity}', "{path}: metric 'accuracy': inf is not a finite number; the evaluation "
                                         "produced no usable value."),
    ("m.json", '{"loss": 1e999}', "{path}: metric 'loss': inf is not a finite number; the evaluation produced no "
                                  "usable value."),
    ("m.yaml", "accuracy: .nan\n", "{path}: metric 'accuracy': NaN is not a finite number; the evaluation produced "
                                   "no usable value."),
    ("m.json", '{"ok": true}', "{path}: metric 'ok': True is not a number; metrics must be numbers."),
    ("m.json", '{"acc": null}', "{path}: metric 'acc': null is not a number; metrics must be numbers."),
    ("m.json", '{"acc": [1, 2]}', "{path}: metric 'acc': [1, 2] is not a number; metrics must be numbers."),
    ("m.json", '{"acc": {}}', "{path}: metric 'acc': {} is not a number; metrics must be numbers."),
    ("m.json", '{"acc": 0.9,}', "{path}:1:13: not valid JSON: Expecting property name enclosed in double quotes."),
    ("m.yaml", "acc: [0.9\n", "{path}:2:1: not valid YAML: expected ',' or ']', but got '<stream end>'."),
    ("m.csv", "accuracy,f1\nhigh,0.8\n", "{path}: metric 'accuracy': 'high' is not a number."),
    ("m.csv", "accuracy,f1\n0.9\n", "{path}:2: 1 values under 2 names."),
    ("m.csv", "accuracy,f1\n0.9,0.8\n0.91,0.81\n", "{path}: expected a header of metric names over exactly one row "
                                                  "of values (or `metric,value` columns), found 2 data rows."),
    ("m.csv", "metric,value\naccuracy,0.9,extra\n", "{path}:2: expected `name,value`, got 3 cells."),
    ("m.csv", "accuracy\nnan\n", "{path}: metric 'accuracy': NaN is not a finite number; the evaluation produced no "
                                 "usable value."),
    ("m.csv", ",,\n", "{path}: holds no metrics; write a header of names over one row of values."),
])
def test_bad_metrics_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(DataError) as caught:
        read_metrics(path)
    assert str(caught.value) == message.replace("{path}", str(path))
    assert caught.value.exit_code == 3


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"metrics\.json: metrics file not found; check that the step writes it"):
        read_metrics(tmp_path / "metrics.json")
    with pytest.raises(DataError, match=r"is a directory, not a metrics file\."):
        read_metrics(tmp_path)


def test_nonfinite_values_allowed_on_request(tmp_path: Path) -> None:
    metrics = read_metrics(write(tmp_path, "m.json", '{"a": NaN, "b": -Infinity, "c": 1}'), allow_nonfinite=True)
    assert math.isnan(metrics["a"]) and metrics["b"] == -math.inf and metrics["c"] == 1.0
    with pytest.raises(DataError, match="is a string"):
        read_metrics(write(tmp_path, "s.json", '{"a": "x"}'), allow_nonfinite=True)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("m.json", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "{path}: cannot read the JSON (nested too deeply)."),
    ("m.json", '{"a": ' + "9" * 5000 + "}", "{path}: cannot read the JSON (a number has too many digits)."),
    ("m.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n", "{path}: cannot read the YAML (nested too deeply)."),
    ("m.yaml", "a: " + "9" * 5000 + "\n", "{path}: cannot read the YAML (a number has too many digits)."),
    ("m.yaml", "a: !!int abc\n", "{path}: cannot read the YAML (invalid literal for int() with base 10: 'abc')."),
    ("m.yaml", "a: !!float ''\n", "{path}: cannot read the YAML (a value does not fit its tag, such as `!!float ''` "
                                  "or `!!bool maybe`)."),
    ("m.yaml", "a: !!bool maybe\n", "{path}: cannot read the YAML (a value does not fit its tag, such as `!!float ''` "
                                    "or `!!bool maybe`)."),
    ("m.yaml", "a: !!timestamp x\n", "{path}: cannot read the YAML (a value does not fit its tag, such as `!!float "
                                     "''` or `!!bool maybe`)."),
    ("m.yaml", "a: 0x" + "f" * 4000 + "\n",
     "{path}: metric 'a': an integer of more than 4,300 digits is not a number."),
])
def test_unreadable_values_are_data_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(DataError) as caught:
        read_metrics(path)
    assert str(caught.value) == message.replace("{path}", str(path))


def test_an_alias_bomb_stops_at_the_limit_of_names(tmp_path: Path) -> None:
    levels = ["a0: &a0 {x: 1, y: 1, z: 1, w: 1, v: 1, u: 1, t: 1, s: 1, r: 1}"]
    levels += [f"a{i}: &a{i} {{" + ", ".join(f"k{j}: *a{i - 1}" for j in range(9)) + "}" for i in range(1, 12)]
    path = write(tmp_path, "m.yaml", "\n".join(levels) + "\n")
    with pytest.raises(DataError, match=r"holds more than 100000 values; a metrics file names a few metrics\."):
        read_metrics(path)


@pytest.mark.parametrize(("name", "text"), [
    ("deep.json", '{"a": ' * 65 + "1" + "}" * 65),
    ("self.yaml", "a: &r {b: *r}\n"),  # a mapping that contains itself
])
def test_names_nest_at_most_64_levels(tmp_path: Path, name: str, text: str) -> None:
    metrics = read_metrics(write(tmp_path, "ok.json", '{"a": ' * 64 + "1" + "}" * 64))
    assert metrics == {".".join(["a"] * 64): 1.0}
    start = time.perf_counter()
    with pytest.raises(DataError, match=r": metric a\.(a|b)\..* nests more than 64 levels deep\.$"):
        read_metrics(write(tmp_path, name, text))
    assert time.perf_counter() - start < 1.0


def test_a_name_the_system_refuses_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read the metrics file"):
        read_metrics(tmp_path / "m\x00.json")
    with pytest.raises(DataError, match=r"cannot read the metrics file .*File name too long"):
        read_metrics(tmp_path / ("m" * 300 + ".json"))


# -- predictions ---------------------------------------------------------------------------------------------


def test_predictions_pair_by_row_id_in_any_order(tmp_path: Path) -> None:
    ours = read_predictions(write(tmp_path, "a.csv", "row_id,y_true,y_pred\n1,cat,cat\n2,dog,cat\n3,1,1.0\n"))
    theirs = read_predictions(write(tmp_path, "b.csv", "row_id,y_true,y_pred\n3,1,0\n1,cat,dog\n2,dog,dog\n"))
    scores = paired_scores(ours, theirs, "accuracy")
    assert scores.challenger == (1.0, 0.0, 1.0)  # labels "1" and "1.0" are the same number
    assert scores.champion == (0.0, 1.0, 0.0)  # rows 1, 2, 3 in the challenger's order
    assert (scores.source, scores.greater_is_better) == ("per-row correctness (y_pred == y_true)", True)


def test_predictions_score_columns(tmp_path: Path) -> None:
    ours = read_predictions(write(tmp_path, "a.csv", "id,accuracy,score\na,1,0.2\nb,0,0.4\n"))
    theirs = read_predictions(write(tmp_path, "b.csv", "id,accuracy,score\nb,1,0.1\na,1,0.3\n"))
    named = paired_scores(ours, theirs, "accuracy")
    assert (named.challenger, named.champion, named.greater_is_better) == ((1.0, 0.0), (1.0, 1.0), None)
    generic = paired_scores(ours, theirs, "log_loss")
    assert (generic.challenger, generic.champion, generic.source) == ((0.2, 0.4), (0.3, 0.1), "per-row `score`")


def test_predictions_regression_errors(tmp_path: Path) -> None:
    ours = read_predictions(write(tmp_path, "a.csv", "row_id,y_true,y_pred\n1,2.0,2.5\n2,1,0\n"))
    theirs = read_predictions(write(tmp_path, "b.csv", "row_id,y_true,y_pred\n1,2.0,3\n2,1,1\n"))
    mse = paired_scores(ours, theirs, "rmse")
    assert (mse.challenger, mse.champion, mse.greater_is_better) == ((0.25, 1.0), (1.0, 0.0), False)
    assert paired_scores(ours, theirs, "mae").challenger == (0.5, 1.0)


@pytest.mark.parametrize(("a", "b", "metric", "message"), [
    ("row_id,y\n1,1\n2,1\n", "row_id,y\n1,1\n", "y",
     "{a} has 2 rows but {b} has 1: both models must be scored on the same rows."),
    ("row_id,y\n1,1\n3,1\n", "row_id,y\n1,1\n2,1\n", "y",
     "{a}:3: row id '3' is not in {b}: both models must be scored on the same rows."),
    ("row_id,y\n1,1\n2,high\n", "row_id,y\n1,1\n2,1\n", "y", "{a}:3: column 'y': 'high' is not a finite number."),
    ("row_id,y\n1,1\n2,nan\n", "row_id,y\n1,1\n2,1\n", "y", "{a}:3: column 'y': 'nan' is not a finite number."),
    ("row_id,y\n1,1\n2,\n", "row_id,y\n1,1\n2,1\n", "y", "{a}:3: column 'y': '' is not a finite number."),
    ("row_id,p\n1,1\n", "row_id,p\n1,1\n", "accuracy",
     "{a}:1: no per-row score for 'accuracy': add a `accuracy` or `score` column, or `y_true` and `y_pred` "
     "(columns found: row_id, p)."),
    ("row_id,y_true,y_pred\n1,cat,1\n", "row_id,y_true,y_pred\n1,1,1\n", "mae",
     "{a}:2: 'cat' is not a finite number; an error metric needs numeric y_true and y_pred."),
])
def test_bad_pairs(tmp_path: Path, a: str, b: str, metric: str, message: str) -> None:
    pa, pb = write(tmp_path, "a.csv", a), write(tmp_path, "b.csv", b)
    with pytest.raises(DataError) as caught:
        paired_scores(read_predictions(pa), read_predictions(pb), metric)
    assert str(caught.value) == message.format(a=pa, b=pb)


@pytest.mark.parametrize(("text", "message"), [
    ("", "{p}: predictions file is empty."),
    ("y_true,y_pred\n1,1\n", "{p}:1: no row id column; add a `row_id` column so both models' rows can be paired."),
    ("row_id,y\n", "{p}: predictions file has a header but no rows."),
    ("row_id,y\n1,0\n2,1\n1,1\n", "{p}:4: row id '1' appears twice (first at line 2); row ids must be unique."),
    ("row_id,y\n1,0,5\n", "{p}:2: 2 columns expected; the row has a different count."),
    ("row_id,y\n1\n", "{p}:2: 2 columns expected; the row has a different count."),
])
def test_bad_predictions_files(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "p.csv", text)
    with pytest.raises(DataError) as caught:
        read_predictions(path)
    assert str(caught.value) == message.format(p=path)


names = st.from_regex(r"[a-z_][a-z0-9_.]{0,20}", fullmatch=True)
finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metrics=st.dictionaries(names, finite, min_size=1, max_size=8))
def test_any_metrics_round_trip_through_every_format(tmp_path: Path, metrics: dict[str, float]) -> None:
    import csv
    import io
    import json

    import yaml

    wide = io.StringIO()
    csv.writer(wide).writerows([list(metrics), [repr(v) for v in metrics.values()]])
    long = io.StringIO()
    csv.writer(long).writerows([["metric", "value"], *([k, repr(v)] for k, v in metrics.items())])
    for name, text in (("m.json", json.dumps(metrics)), ("m.yaml", yaml.safe_dump(metrics)),
                       ("w.csv", wide.getvalue()), ("l.csv", long.getvalue())):
        assert read_metrics(write(tmp_path, name, text)) == metrics
