from __future__ import annotations

from collections.abc import Callable
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from mlops_bot.config import load_config
from mlops_bot.config.model import Config
from mlops_bot.errors import ConfigError
from tests.helpers.ml_yaml import VALID

REPO = Path(__file__).resolve().parents[2]


def test_valid_config_becomes_frozen_dataclasses_with_defaults(project: Callable[[str], Path]) -> None:
    config = load_config(project(VALID), env={})
    assert isinstance(config, Config)
    assert list(config.pipeline) == ["prepare", "train", "evaluate"]
    assert config.pipeline["prepare"].cmd == "python prepare.py"
    assert config.pipeline["train"].cmd == ("python", "train.py")
    assert config.tracking.uri == "local" and config.tracking.experiment == "demo"
    assert config.compare.champion.alias == "champion"
    assert config.compare.criteria[1].greater_is_better is False
    assert config.compare.criteria[1].max_regression is not None
    assert config.compare.criteria[1].max_regression.relative == 0.1
    assert config.compare.significance is not None and config.compare.significance.alpha == 0.05
    assert config.promote.on == ("push",) and config.promote.previous_alias == "previous-champion"
    assert config.rules[0].where == {"alias": "champion"}
    assert len(config.digest) == 64
    with pytest.raises(FrozenInstanceError):
        config.version = 2  # type: ignore[misc]


def test_quickstart_example_is_valid() -> None:
    config = load_config(REPO / "examples" / "quickstart" / "ml.yaml", env={})
    assert config.model.name == "digits-classifier"
    assert config.pipeline["evaluate"].predictions == "build/predictions.csv"


def test_interpolation_with_default_value_and_escape(project: Callable[[str], Path]) -> None:
    text = VALID.replace("model: {name: demo", "tracking: {uri: '${URI:-local}', experiment: '${EXP}'}\n"
                         "model: {name: demo").replace("python evaluate.py", "echo $$HOME && python evaluate.py")
    config = load_config(project(text), env={"EXP": "exp-1"})
    assert config.tracking.uri == "local"
    assert config.tracking.experiment == "exp-1"
    assert config.pipeline["evaluate"].cmd == "echo $HOME && python evaluate.py"
    assert load_config(project(text), env={"EXP": "e", "URI": "http://x"}).tracking.uri == "http://x"


def test_unset_variable_names_variable_and_line(project: Callable[[str], Path]) -> None:
    text = VALID.replace("https://example.invalid/deploy", "${DEPLOY_URL}")
    with pytest.raises(ConfigError) as caught:
        load_config(project(text), env={})
    [problem] = caught.value.problems
    assert (problem.line, problem.col) == (25, 38) and problem.path == "deploy[0].url"
    assert "environment variable DEPLOY_URL is not set" in problem.message


def test_yaml_1_1_booleans_stay_strings(project: Callable[[str], Path]) -> None:
    text = VALID.replace("where: {alias: champion}", "where: {alias: on, merged: true, version: 3}")
    config = load_config(project(text), env={})
    assert config.rules[0].where == {"alias": "on", "merged": "true", "version": "3"}
