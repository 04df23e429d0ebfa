"""Issue #13, items 7-12: inputs that crashed the loader (exit 4) or kept it busy for seconds are refused with a
located ConfigError (exit 2), quickly; and what is valid still loads as before."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mlops_bot.config import compose, load_config
from mlops_bot.config.compose import MAX_DEPTH, MAX_NODES, load_yaml
from mlops_bot.config.schema import ecma_regex
from mlops_bot.errors import ConfigError
from tests.helpers.ml_yaml import VALID

Project = Callable[[str], Path]


@pytest.fixture(autouse=True, params=["libyaml", "python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test with libyaml's parser (where installed) and with PyYAML's: the limits hold with either."""
    if request.param == "python":
        monkeypatch.setattr(compose, "_Loader", compose._PyLoader)
    elif compose._Loader is compose._PyLoader:
        pytest.skip("libyaml is not installed")
    return str(request.param)


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    return [str(p).replace(str(path), "ml.yaml") for p in caught.value.problems]


# -- 7. recursion --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "where"), [
    ("[" * 500 + "]" * 500, "ml.yaml:1:67: x[0][0][0]"),
    ("{a: " * 500 + "1" + "}" * 500, "ml.yaml:1:253: x.a.a.a"),  # the key of the 63rd mapping: level 65
])
def test_deep_nesting_is_refused_at_the_level_past_the_limit(project: Project, value: str, where: str) -> None:
    [message] = problems_of(project(f"x: {value}\n"))
    assert message.startswith(where)
    assert message.endswith(f"the values nest more than {MAX_DEPTH} levels deep; check the brackets and the "
                            "indentation")


def test_block_nesting_is_refused_too(project: Project) -> None:
    text = "".join(" " * i + "k:\n" for i in range(300)) + " " * 300 + "k: 1\n"
    [message] = problems_of(project(text))
    assert message.startswith("ml.yaml:64:64: k.k.k.k") and "nest more than 64 levels" in message


def test_nesting_up_to_the_limit_is_read(project: Project) -> None:
    messages = problems_of(project(VALID + "x: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"))
    assert messages == ["ml.yaml:28:1: x: unknown key 'x'"]


@pytest.mark.parametrize(("text", "where"), [
    ("x: &r [*r]\n", "ml.yaml:1:8: x[0]"),
    ("x: &r {a: *r}\n", "ml.yaml:1:11: x.a"),
    ("x: &r\n  a: [1, {b: *r}]\n", "ml.yaml:2:14: x.a[1].b"),
    ("x: &r {<<: *r}\n", "ml.yaml:1:12: x.<<"),
])
def test_an_alias_inside_its_own_anchor_is_refused(project: Project, text: str, where: str) -> None:
    [message] = problems_of(project(text))
    assert message == (f"{where}: the alias *r is used inside its own anchor &r, which would make a value that "
                       "contains itself; refer to a finished anchor")


def test_aliases_cannot_nest_past_the_limit(project: Project) -> None:
    levels = ["a0: &a0 " + "[" * 30 + "]" * 30]
    levels += [f"a{i}: &a{i} " + "[" * 30 + f"*a{i - 1}" + "]" * 30 for i in range(1, 4)]
    [message] = problems_of(project("\n".join(levels) + "\n"))
    assert message.startswith("ml.yaml:3:") and "the alias *a1 nests the values more than 64 levels deep" in message


# -- 8. merge keys -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "col", "kind"), [
    ("1", 9, "the value '1'"), ("[1]", 10, "the value '1'"), ("[[1]]", 10, "a list"), ("''", 9, "the value ''"),
])
def test_a_merge_key_takes_mappings_only(project: Project, value: str, col: int, kind: str) -> None:
    [message] = problems_of(project(f"x: {{<<: {value}}}\n"))
    assert message == (f"ml.yaml:1:{col}: x.<<: the merge key `<<` takes a mapping or a list of mappings (such as "
                       f"`<<: *defaults`), not {kind}")


def test_merged_values_explicit_keys_win_and_earlier_anchors_win(project: Project) -> None:
    text = VALID.replace("  train:\n    cmd: [python, train.py]\n    deps: [train.py, build/data.csv]\n",
                         "  train:\n    <<: [&a {cmd: [python, train.py], timeout: 5}, {cmd: no, timeout: 9}]\n"
                         "    deps: [train.py, build/data.csv]\n")
    config = load_config(project(text), env={})
    train = config.pipeline["train"]
    assert (train.cmd, train.timeout, train.deps) == (("python", "train.py"), 5, ("train.py", "build/data.csv"))


# -- 9. explicit tags and huge integers ----------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "why"), [
    ("!!int abc", "'abc' is not a valid int; fix the value or remove the tag !!int"),
    ("!!float abc", "'abc' is not a valid float; fix the value or remove the tag !!float"),
    ("!!int ''", "'' is not a valid int; fix the value or remove the tag !!int"),
    ("!!float ''", "'' is not a valid float; fix the value or remove the tag !!float"),
    ("!!int 0x", "'0x' is not a valid int; fix the value or remove the tag !!int"),
    ("9" * 4301, "'9999999999999999999999999999999999999'... is too long for a number (4301 characters); quote it "
                 "if it is text"),
    ("0x" + "f" * 4000, "'0xfffffffffffffffffffffffffffffffffff'... is too long for a number (4002 characters); "
                        "quote it if it is text"),
    ("!!binary aGk=", "unsupported YAML tag tag:yaml.org,2002:binary"),
])
def test_values_their_tags_cannot_hold_are_located(project: Project, value: str, why: str) -> None:
    [message] = problems_of(project(VALID.replace("version: 1", f"version: {value}")))
    assert message == f"ml.yaml:1:10: version: {why}"


def test_a_long_hex_integer_under_the_length_limit_reaches_the_schema_and_prints(project: Project) -> None:
    [message] = problems_of(project(VALID.replace("version: 1", "version: 0x" + "f" * 98)))
    assert message == f"ml.yaml:1:10: version: unsupported version {16 ** 98 - 1}; this mlops-bot reads version 1"


def test_nul_characters_and_lone_surrogates_are_refused(project: Project) -> None:
    messages = problems_of(project(VALID.replace("cmd: python evaluate.py", 'cmd: "python\\0 evaluate.py"')))
    assert messages == ["ml.yaml:15:10: pipeline.evaluate.cmd: the text holds a NUL character (\\0 or \\x00); "
                        "remove it"]


# -- 10. paths the file system cannot hold, params files that nest too deep ----------------------------------------

@pytest.mark.parametrize(("old", "new", "where"), [
    ("deps: [prepare.py]", "deps: [{}]", "ml.yaml:7:12: pipeline.prepare.deps[0]"),
    ("params: params.yaml", "params: {}", "ml.yaml:3:9: params"),
    ("metrics: build/metrics.json", "metrics: {}", "ml.yaml:17:14: pipeline.evaluate.metrics"),
    ("outs: [build/model]", "outs: [{}]", "ml.yaml:13:12: pipeline.train.outs[0]"),
])
def test_a_name_too_long_for_the_file_system_is_a_config_error(project: Project, old: str, new: str,
                                                               where: str) -> None:
    messages = problems_of(project(VALID.replace(old, new.format("a" * 300))))
    assert f"{where}: '{'a' * 57}'... has a name of 300 bytes; file and directory names are limited to 255 bytes: " \
           "shorten it" in messages


def test_a_path_too_long_or_with_a_control_character_is_a_config_error(project: Project) -> None:
    messages = problems_of(project(VALID.replace("deps: [prepare.py]", 'deps: ["data\\n.csv", ' + "a/" * 2100 + "]")))
    assert messages[:2] == [
        "ml.yaml:7:12: pipeline.prepare.deps[0]: 'data\\n.csv' holds the control character '\\n'; write the path "
        "without it",
        f"ml.yaml:7:26: pipeline.prepare.deps[1]: '{'a/' * 28}a'... is 4200 bytes long; paths are limited to 4095 "
        "bytes: shorten it"]


def test_a_config_path_too_long_is_a_config_error(tmp_path: Path) -> None:
    [message] = problems_of(tmp_path / ("c" * 300 + ".yaml"))
    assert message.endswith(": cannot read the file (File name too long); check the path")


def test_a_params_file_nested_too_deep_names_the_file(project: Project) -> None:
    path = project(VALID)
    (path.parent / "params.yaml").write_text("seed: 1\ntrain:\n  C: " + "[" * 900 + "]" * 900 + "\n")
    [message] = problems_of(path)
    assert message == ("ml.yaml:3:9: params: cannot read 'params.yaml': params.yaml:3:68: the values nest more than "
                       "64 levels deep; check the brackets and the indentation")


def test_the_params_file_keeps_its_yaml_1_1_values() -> None:
    assert load_yaml("a: yes\nb: 017\nc: 1_000\nd: 2001-12-14\nx: &x {k: 1}\ny: {<<: *x, j: 2}\n") == {
        "a": True, "b": 15, "c": 1000, "d": __import__("datetime").date(2001, 12, 14), "x": {"k": 1},
        "y": {"k": 1, "j": 2}}


# -- 11. the node limit, while composing ---------------------------------------------------------------------------

def test_a_one_mebibyte_flat_list_is_refused_long_before_it_is_read(project: Project, parser: str) -> None:
    text = "x: [" + "1," * 524_000 + "1]\n"
    path = project(text)
    start = time.process_time()  # CPU seconds, measured against a peer in the same run: whatever else runs
    [message] = problems_of(path)
    refused = time.process_time() - start
    start = time.process_time()
    part = "x: [" + "1," * 150_000 + "1]\n"  # under a third of the document, three times the limit
    yaml.compose(part, Loader=yaml.CSafeLoader if parser == "libyaml" else yaml.SafeLoader)
    peer = time.process_time() - start
    # here 0.25 s vs 0.4 s (libyaml) and 0.9 s vs 2.8 s (Python); composing it all before counting took 3.5x peer
    assert refused < peer
    assert message.startswith(f"ml.yaml:1:99999: x[{MAX_NODES - 3}]: the document expands to more than {MAX_NODES} "
                              "values")


def test_the_limit_stops_composing_before_the_end_of_the_file(project: Project) -> None:
    # A syntax error after the limit is never reached: the values past the limit are not even parsed.
    [message] = problems_of(project("x: [" + "1," * 60_000 + "1\ny: ]]]\n"))
    assert f"expands to more than {MAX_NODES} values" in message


def test_many_outs_are_checked_without_comparing_every_pair(project: Project) -> None:
    outs = ", ".join(f"build/o{i}" for i in range(12_000))
    path = project(VALID.replace("outs: [build/model]", f"outs: [build/model, {outs}, build/data.csv/x]"))
    start = time.process_time()  # CPU seconds: what the check costs, whatever else the machine runs
    messages = problems_of(path)
    assert time.process_time() - start < 2.0
    [message] = messages
    assert message.startswith("ml.yaml:13:")
    assert message.endswith(": pipeline.train.outs[12001]: 'build/data.csv/x' is also written by step 'prepare' "
                            "('build/data.csv'); each file may have one producer")


def test_a_long_chain_of_steps_is_checked_without_recursion(project: Project) -> None:
    steps = "".join(f"  s{i}: {{cmd: x, outs: [o{i}], deps: [o{i + 1}]}}\n" for i in range(3000))
    [message] = problems_of(project(VALID.replace("pipeline:\n", "pipeline:\n" + steps + "  s3000: {cmd: x, outs: "
                                                  "[o3000], deps: [o0]}\n")))
    assert "pipeline.s3000.deps: the steps form a cycle: s0 -> s3000 -> s2999 -> s2998 -> s2997 -> (2992 more) -> " \
           "s4 -> s3 -> s2 -> s1 -> s0" in message


# -- 12. schema patterns end at the end ----------------------------------------------------------------------------

@pytest.mark.parametrize(("old", "new", "where"), [
    ("name: demo", 'name: "demo\\n"', "ml.yaml:2:15: model.name: 'demo\\n' is not a valid model name"),
    ("secret_env: HOOK_SECRET", 'secret_env: "HOOK_SECRET\\n"', "ml.yaml:25:84: deploy[0].secret_env: "
                                                                 "'HOOK_SECRET\\n' does not match"),
    ("event: model_version.alias_set", 'event: "model_version.alias_set\\n"', "ml.yaml:27:13: on[0].event: "
                                                                              "'model_version.alias_set\\n' does not"),
    ("  train:\n", '  "train\\n":\n', "ml.yaml:5:3: pipeline: 'train\\n' does not match"),
])
def test_a_trailing_newline_does_not_pass_a_pattern(project: Project, old: str, new: str, where: str) -> None:
    messages = problems_of(project(VALID.replace(old, new)))
    assert any(m.startswith(where) for m in messages), messages


def test_patterns_are_read_as_json_schema_reads_them() -> None:
    assert ecma_regex("^a$").search("a") and not ecma_regex("^a$").search("a\n")
    assert ecma_regex("^[$]$").search("$") and ecma_regex(r"^\$$").search("$")
    assert not ecma_regex(r"^\d$").search("\u0663")  # ECMA-262's \d is [0-9]
    assert ecma_regex("^https?://").search("https://x\n")  # no `$`: unchanged
