"""The params file at run time: read with ml.yaml's limits (config.compose.load_yaml), so what `validate` accepts
`run` reads alike, and a broken file is a UsageError naming it (exit 2), never an internal error."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlops_bot.config.model import Step
from mlops_bot.errors import UsageError
from mlops_bot.pipeline import cache

STEPS = {"t": Step("t", "x", params=("seed",))}


@pytest.mark.parametrize(("text", "message"), [
    ("seed: " + "[" * 900 + "]" * 900 + "\n", "params.yaml:1:70: the values nest more than 64 levels deep; check the "
                                             "brackets and the indentation."),
    ("seed: !!int abc\n", "params.yaml:1:7: invalid YAML: 'abc' is not a valid int; fix the value or remove the tag "
                          "!!int."),
    ("seed: !!bool maybe\n", "params.yaml:1:7: invalid YAML: 'maybe' is not a valid bool; fix the value or remove "
                             "the tag !!bool."),
    ("seed: " + "9" * 5000 + "\n", "params.yaml:1:7: invalid YAML: '9999999999999999999999999999999999999'... is too "
                                   "long for a number (5000 characters); quote it if it is text."),
    ("seed: &r [*r]\n", "params.yaml:1:11: the alias *r is used inside its own anchor &r, which would make a value "
                        "that contains itself; refer to a finished anchor."),
    ("x: {<<: 1}\nseed: 1\n", "params.yaml:1:9: invalid YAML: expected a mapping or list of mappings for merging, "
                              "but found scalar."),
    ("seed: 1\n---\nseed: 2\n", "params.yaml:2:1: a second YAML document starts here; the file must hold one."),
    ("seed: 1\x00\n", "params.yaml:1:8: invalid YAML: unacceptable character #x0000: control characters are not "
                       "allowed."),
])
def test_a_broken_params_file_is_a_usage_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(UsageError) as caught:
        cache.load_params(tmp_path, "params.yaml", STEPS)
    assert str(caught.value) == message


def test_an_alias_bomb_stops_at_the_limit(tmp_path: Path) -> None:
    levels = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    levels += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]
    (tmp_path / "params.yaml").write_text("seed: 1\n" + "\n".join(levels) + "\n")
    start = time.process_time()  # CPU seconds: what the reader costs, whatever else the machine runs
    with pytest.raises(UsageError, match=r"params.yaml:\d+:\d+: the document expands to more than 1000000 values"):
        cache.load_params(tmp_path, "params.yaml", STEPS)
    assert time.process_time() - start < 2.0


@pytest.mark.parametrize("name", ["dir", "p" * 300 + ".yaml"])
def test_a_params_path_that_cannot_be_read_is_a_usage_error(tmp_path: Path, name: str) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(UsageError, match=r": cannot read the params file \("):
        cache.load_params(tmp_path, name, STEPS)


def test_the_values_are_what_yaml_1_1_says(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("seed: 0x1F\nflag: yes\nlr: 1e-3\nbase: &b {k: 1}\nmerged: {<<: *b, j: 2}\n")
    steps = {"t": Step("t", "x", params=("seed", "flag", "lr", "merged"))}
    assert cache.load_params(tmp_path, "params.yaml", steps) == {"seed": 31, "flag": True, "lr": "1e-3",
                                                                   "merged": {"k": 1, "j": 2}}
