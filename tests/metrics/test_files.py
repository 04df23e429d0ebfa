"""Metrics files: every accepted shape, and a clear error naming the file, the line and the metric."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_bot.errors import DataError
from mlops_bot.metrics.files import read_metrics


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
     "{path}:1: metric 'accuracy': '0.95' is a string, not a number; write it unquoted."),
    ("m.json", '{"accuracy": NaN}', "{path}:1: metric 'accuracy': NaN is not a finite number; the evaluation produced "
                                    "no usable value."),
    ("m.json", '{"accuracy": Infinity}', "{path}:1: metric 'accuracy': inf is not a finite number; the evaluation "
                                         "produced no usable value."),
    ("m.json", '{"loss": 1e999}', "{path}:1: metric 'loss': inf is not a finite number; the evaluation produced no "
                                  "usable value."),
    ("m.yaml", "accuracy: .nan\n", "{path}:1: metric 'accuracy': NaN is not a finite number; the evaluation produced "
                                   "no usable value."),
    ("m.json", '{"ok": true}', "{path}:1: metric 'ok': True is not a number; metrics must be numbers."),
    ("m.json", '{"acc": null}', "{path}:1: metric 'acc': null is not a number; metrics must be numbers."),
    ("m.json", '{"acc": [1, 2]}', "{path}:1: metric 'acc': [1, 2] is not a number; metrics must be numbers."),
    ("m.json", '{"acc": {}}', "{path}:1: metric 'acc': {} is not a number; metrics must be numbers."),
    ("m.json", '{"acc": 0.9,}', "{path}:1:13: not valid JSON: Expecting property name enclosed in double quotes."),
    ("m.csv", "accuracy,f1\nhigh,0.8\n", "{path}:2: metric 'accuracy': 'high' is not a number."),
    ("m.csv", "accuracy,f1\n0.9\n", "{path}:2: 1 values under 2 names."),
    ("m.csv", "accuracy,f1\n0.9,0.8\n0.91,0.81\n", "{path}: expected a header of metric names over exactly one row "
                                                  "of values (or `metric,value` columns), found 2 data rows."),
    ("m.csv", "metric,value\naccuracy,0.9,extra\n", "{path}:2: expected `name,value`, got 3 cells."),
    ("m.csv", "accuracy\nnan\n", "{path}:2: metric 'accuracy': NaN is not a finite number; the evaluation produced no "
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
    ("m.yaml", "a: " + "9" * 5000 + "\n",
     "{path}:1: metric 'a': " + "9" * 57 + "... cannot be read (a number has too many digits); fix the value."),
    ("m.yaml", "a: !!int abc\n", "{path}:1: metric 'a': !!int abc cannot be read (invalid literal for int() with base "
                                 "10: 'abc'); fix the value or remove its tag."),
    ("m.yaml", "a: !!float ''\n", "{path}:1: metric 'a': !!float '' cannot be read (it is not a valid float); fix the "
                                  "value or remove its tag."),
    ("m.yaml", "a: !!bool maybe\n", "{path}:1: metric 'a': !!bool maybe cannot be read (it is not a valid bool); fix "
                                    "the value or remove its tag."),
    ("m.yaml", "a: !!timestamp x\n", "{path}:1: metric 'a': !!timestamp x is not a number; metrics must be numbers."),
    ("m.yaml", "a: 0x" + "f" * 4000 + "\n",
     "{path}:1: metric 'a': 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffff... is too large for a number."),
])
def test_unreadable_values_are_data_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(DataError) as caught:
        read_metrics(path)
    assert str(caught.value) == message.replace("{path}", str(path))


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(("text", "message"), [
    ("acc: [0.9\n", r":\d+:\d+: not valid YAML: (did not find expected|expected) ',' or '\]'"),
    ("a: " + "[" * 5000 + "]" * 5000 + "\n",
     r"(: cannot read the YAML \(nested too deeply\)|:1:\d+: not valid YAML: exceeded maximum nesting depth)\.$"),
    ("on: 5e-1\nyes: '1'\n", r"m\.yaml:2: metric 'yes': '1' is a string, not a number; write it unquoted\.$"),
])
def test_libyaml_and_pyyamls_own_parser_read_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool,
                                                   text: str, message: str) -> None:
    from mlops_bot.support import yaml12

    if not fast:
        monkeypatch.setattr(yaml12, "_CLoader12", None)
    with pytest.raises(DataError, match=message):
        read_metrics(write(tmp_path, "m.yaml", text))


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
    start = time.process_time()  # CPU seconds: what the reader costs, whatever else the machine runs
    with pytest.raises(DataError, match=r": metric a\.(a|b)\..* nests more than 64 levels deep\.$"):
        read_metrics(write(tmp_path, name, text))
    assert time.process_time() - start < 1.0


def test_a_name_the_system_refuses_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read the metrics file"):
        read_metrics(tmp_path / "m\x00.json")
    with pytest.raises(DataError, match=r"cannot read the metrics file .*File name too long"):
        read_metrics(tmp_path / ("m" * 300 + ".json"))


# -- issue #16: duplicates refused with both places, YAML read as YAML 1.2 -----------------------------------


@pytest.mark.parametrize(("name", "text", "message"), [
    ("m.json", '{"accuracy": 0.9,\n "f1": 0.8,\n "accuracy": 0.95}',
     "{path}:3: metric 'accuracy' is written twice: key 'accuracy' (line 1) and key 'accuracy' (line 3); keep one of "
     "them."),
    ("m.json", '{\n  "test.accuracy": 0.9,\n  "test": {\n    "accuracy": 0.95\n  }\n}',
     "{path}:4: metric 'test.accuracy' is written twice: key 'test.accuracy' (line 2) and key 'test' > 'accuracy' "
     "(line 4); keep one of them."),
    ("m.json", '{"test": {"a": 1, "a": 2}}',
     "{path}:1: metric 'test.a' is written twice: key 'test' > 'a' (line 1) and key 'test' > 'a' (line 1); keep one "
     "of them."),
    ("m.yaml", "accuracy: 0.9\nf1: 0.8\naccuracy: 0.95\n",
     "{path}:3: metric 'accuracy' is written twice: key 'accuracy' (line 1) and key 'accuracy' (line 3); keep one of "
     "them."),
    ("m.yaml", "test:\n  accuracy: 0.9\ntest.accuracy: 0.95\n",
     "{path}:3: metric 'test.accuracy' is written twice: key 'test' > 'accuracy' (line 2) and key 'test.accuracy' "
     "(line 3); keep one of them."),
    ("m.csv", "metric,value\naccuracy,0.9\nf1,0.8\naccuracy,0.95\n",
     "{path}:4: metric 'accuracy' is written twice: the row at line 2 and the row at line 4; keep one of them."),
    ("m.csv", "accuracy,f1,accuracy\n0.9,0.8,0.95\n",
     "{path}:1: column 3 of the header repeats metric 'accuracy' of column 1; keep one of them."),
])
def test_a_metric_written_twice_is_refused_naming_both_places(tmp_path: Path, name: str, text: str,
                                                               message: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(DataError) as caught:
        read_metrics(path)
    assert str(caught.value) == message.replace("{path}", str(path))
    assert caught.value.exit_code == 3


def test_yaml_metrics_are_read_as_yaml_1_2(tmp_path: Path) -> None:
    text = "on: 5e-1\nyes: 1E+3\noff: 010\nno: .5\nn: 0o17\ny: 0x1F\n"
    assert read_metrics(write(tmp_path, "m.yaml", text)) == {"on": 0.5, "yes": 1000.0, "off": 10.0, "no": 0.5,
                                                             "n": 15.0, "y": 31.0}


@pytest.mark.parametrize(("text", "message"), [
    ("acc: '5e-1'\n", "{path}:1: metric 'acc': '5e-1' is a string, not a number; write it unquoted."),
    ("acc: 1_000\n", "{path}:1: metric 'acc': '1_000' is not a number; YAML 1.2 writes numbers as 0.95, 1e-3 or 12."),
    ("acc: yes\n", "{path}:1: metric 'acc': 'yes' is not a number; YAML 1.2 writes numbers as 0.95, 1e-3 or 12."),
    ("acc: '1_000'\n", "{path}:1: metric 'acc': '1_000' is a string, not a number; metrics must be numbers."),
    ("acc: 2024-01-01\n",
     "{path}:1: metric 'acc': '2024-01-01' is not a number; YAML 1.2 writes numbers as 0.95, 1e-3 or 12."),
    ("base: &b {x: 1}\nmore:\n  <<: *b\n",
     "{path}:3: `<<` (YAML 1.1's merge key) is not read in a metrics file, which is YAML 1.2; write the metrics out."),
    ("? [a, b]\n: 1\n", "{path}:1: a key is a list; metric names are plain names."),
    ("a: 1\n---\nb: 2\n",
     "{path}:2:1: not valid YAML: expected a single document in the stream, but found another document."),
])
def test_yaml_values_are_typed_and_explained_by_yaml_1_2(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "m.yaml", text)
    with pytest.raises(DataError) as caught:
        read_metrics(path)
    assert str(caught.value) == message.replace("{path}", str(path))


def test_errors_name_the_line_of_a_nested_metric(tmp_path: Path) -> None:
    text = '{\n  "note": "a \\"quoted\\": text",\n  "rows": [{"k": 1}, {"z": 2}],\n  "test": {\n    "f1": "x"\n  }\n}'
    path = write(tmp_path, "m.json", text)
    with pytest.raises(DataError, match=r"m\.json:2: metric 'note': 'a \"quoted\": text' is a string"):
        read_metrics(path)
    path.write_text(text.replace('"a \\"quoted\\": text"', "1").replace('[{"k": 1}, {"z": 2}]', "2"))
    with pytest.raises(DataError, match=r"m\.json:5: metric 'test\.f1': 'x' is a string, not a number; metrics must"):
        read_metrics(path)
    yaml_path = write(tmp_path, "m.yaml", "test:\n  acc: 0.9\n  f1:\n    macro: [1, 2]\n")
    with pytest.raises(DataError, match=r"m\.yaml:4: metric 'test\.f1\.macro': \[1, 2\] is not a number"):
        read_metrics(yaml_path)


@pytest.mark.parametrize(("text", "message"), [
    (",acc\n1,2\n", "{path}:1: column 1 of the header has no name; name every metric."),
    ("metric,value\n,0.9\n", "{path}:2: expected `name,value`, got no name."),
    ("acc,f1\n0.9,\n", "{path}:2: metric 'f1': the cell is empty; write a number."),
    ("acc\n" + "9" * 200_000 + "\n", "{path}:2: not valid CSV: field larger than field limit (131072)."),
])
def test_csv_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "m.csv", text)
    with pytest.raises(DataError) as caught:
        read_metrics(path)
    assert str(caught.value) == message.replace("{path}", str(path))


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


keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(keys, st.one_of(finite, st.dictionaries(keys, finite, min_size=1, max_size=3)),
                            min_size=1, max_size=6),
       indent=st.sampled_from([None, 0, 2]), ascii_only=st.booleans())
def test_any_json_keys_are_located_and_flattened(tmp_path: Path, data: dict[str, object], indent: int | None,
                                                 ascii_only: bool) -> None:
    import json

    text = json.dumps(data, indent=indent, ensure_ascii=ascii_only)
    flat = [(f"{k}.{n}", v) for k, inner in data.items() if isinstance(inner, dict) for n, v in inner.items()]
    flat += [(k, v) for k, v in data.items() if not isinstance(v, dict)]
    path = write(tmp_path, "m.json", text)
    if len({name for name, _ in flat}) < len(flat):  # `a.b` beside {a: {b}}: refused, with both lines
        with pytest.raises(DataError, match=r"m\.json:\d+: metric .* is written twice: key .*\(line \d+\) and key"):
            read_metrics(path)
    else:
        assert read_metrics(path) == dict(flat)
