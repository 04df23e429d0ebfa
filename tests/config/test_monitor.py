"""`monitor:` checks a schema cannot express, each a located problem (config/monitor.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.config import load_config
from mlops_bot.errors import ConfigError
from tests.helpers.ml_yaml import VALID


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    return [str(p).replace(str(path), "ml.yaml") for p in caught.value.problems]


def with_monitor(lines: str) -> str:
    return VALID + "monitor:\n" + lines


def test_a_valid_monitor_loads(project: Callable[[str], Path]) -> None:
    config = load_config(project(with_monitor("  current: data/today.csv\n  numeric: [x]\n  categorical: [c]\n")),
                         env={})
    assert config.monitor is not None and config.monitor.numeric == ("x",)


def test_a_column_both_numeric_and_categorical(project: Callable[[str], Path]) -> None:
    messages = problems_of(project(with_monitor("  current: d.csv\n  numeric: [x, y]\n  categorical: [c, y]\n")))
    assert messages == ["ml.yaml:31:20: monitor.categorical[1]: 'y' is listed in monitor.numeric too; a column is "
                        "compared as numbers or as categories, not both: remove it from one of the lists"]


def test_a_listed_column_outside_the_features(project: Callable[[str], Path]) -> None:
    text = with_monitor("  current: d.csv\n  features: [age, city]\n  numeric: [agee]\n  categorical: [city, zip]\n")
    messages = problems_of(project(text))
    assert messages == [
        "ml.yaml:31:13: monitor.numeric[0]: 'agee' is not in monitor.features, so it is never compared; add it to "
        "features or remove it here; did you mean 'age'?",
        "ml.yaml:32:23: monitor.categorical[1]: 'zip' is not in monitor.features, so it is never compared; add it to "
        "features or remove it here"]


def test_the_fetching_command_sees_no_secret(project: Callable[[str], Path]) -> None:
    text = with_monitor("  current: {cmd: fetch, path: d.csv, pass_env: [HOOK_SECRET, GITHUB_TOKEN, AWS_*]}\n")
    messages = problems_of(project(text))
    assert [m.split(": ")[1] for m in messages] == ["monitor.current.pass_env[0]", "monitor.current.pass_env[1]"]
    assert "is never passed to the command that fetches the current data" in messages[0]


def test_without_a_reference_the_trainer_needs_tabular_deps(project: Callable[[str], Path]) -> None:
    text = with_monitor("  current: d.csv\n").replace("outs: [build/data.csv]", "outs: [build/data.bin]") \
        .replace("deps: [train.py, build/data.csv]", "deps: [train.py, build/data.bin]") \
        .replace("deps: [build/model, build/data.csv]", "deps: [build/model, build/data.bin]")
    [message] = problems_of(project(text))
    assert message.startswith("ml.yaml:28:1: monitor: no reference is set and step 'train' (which writes "
                              "build/model) has no .csv, .tsv or .parquet dep")
    load_config(project(text.replace("  current: d.csv\n", "  current: d.csv\n  reference: ref.csv\n")), env={})
