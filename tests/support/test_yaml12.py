"""YAML 1.2's core schema on PyYAML: each plain scalar typed as the 1.2 spec says, where YAML 1.1 differs."""

from __future__ import annotations

import math

import pytest
import yaml

from mlops_bot.support.yaml12 import Loader12, implicit_type, loader


@pytest.mark.parametrize(("text", "value"), [
    ("5e-1", 0.5), ("1E+3", 1000.0), (".5", 0.5), ("1.", 1.0), ("-.inf", -math.inf), ("+12", 12), ("010", 10),
    ("0o17", 15), ("0x1F", 31), ("true", True), ("FALSE", False), ("~", None), ("", None), ("Null", None),
    ("yes", "yes"), ("on", "on"), ("Off", "Off"), ("1_000", "1_000"), ("1:30", "1:30"), ("0b101", "0b101"),
    ("2024-01-01", "2024-01-01"), ("'5e-1'", "5e-1"), ("!!int '7'", 7), ("!!int 0b101", 5),
])
def test_plain_scalars_are_typed_by_the_core_schema(text: str, value: object) -> None:
    for load in (loader, Loader12):  # libyaml's parser where installed, and PyYAML's own
        loaded = load(f"v: {text}\n").get_single_data()["v"]
        assert loaded == value and type(loaded) is type(value)


def test_nan_keys_and_the_types_of_plain_text() -> None:
    assert math.isnan(yaml.load("v: .NaN\n", Loader=Loader12)["v"])
    assert yaml.load("on: 1\nyes: 2\n<<: 3\n", Loader=Loader12) == {"on": 1, "yes": 2, "<<": 3}
    assert [implicit_type(t) for t in ("5e-1", "010", "1_000", "true", "yes", "~", "")] == [
        "float", "int", "str", "bool", "str", "null", "null"]
    assert yaml.safe_load("v: 010\nw: yes\n") == {"v": 8, "w": True}  # PyYAML's own loaders keep YAML 1.1
