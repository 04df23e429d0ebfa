"""`deploy:` targets of type mlflow_serve: their fields as loaded, and the checks a schema cannot express, each a
located problem (config/serving.py)."""

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


def with_targets(*lines: str) -> str:
    return VALID.replace("deploy:\n", "deploy:\n" + "".join(f"  - {line}\n" for line in lines))


def test_a_target_loads_with_its_defaults_and_the_evaluation_predictions(project: Callable[[str], Path]) -> None:
    config = load_config(project(with_targets(
        "{name: local, type: mlflow_serve, port: 5055, verify: {rows: build/data.csv, drop: [label]}}")), env={})
    target = config.deploy[0]
    assert (target.port, target.host, target.workers) == (5055, "127.0.0.1", 1)
    verify = target.verify
    assert (verify.rows, verify.drop, verify.id_column, verify.agreement, verify.sample, verify.p95_ms) == \
        ("build/data.csv", ("label",), "row_id", 0.99, 200, None)
    assert verify.predictions == "build/predictions.csv"  # the evaluate step's


def test_port_is_required_and_bounded(project: Callable[[str], Path]) -> None:
    messages = problems_of(project(with_targets("{name: a, type: mlflow_serve}",
                                                "{name: b, type: mlflow_serve, port: 70000}")))
    assert len(messages) == 2
    assert "deploy[0]" in messages[0] and "missing required key 'port'" in messages[0]
    assert "deploy[1].port" in messages[1] and "70000" in messages[1]


def test_rows_nobody_writes_two_targets_on_one_port_and_no_predictions(project: Callable[[str], Path]) -> None:
    text = with_targets("{name: a, type: mlflow_serve, port: 5055, verify: {rows: data/missing.csv}}",
                        "{name: b, type: mlflow_serve, port: 5055}")
    text = text.replace("    predictions: build/predictions.csv\n", "")
    text = text.replace("  significance: {metric: accuracy, test: mcnemar}\n", "")
    messages = problems_of(project(text))
    assert messages == [
        "ml.yaml:23:55: deploy[0].verify: verification compares the server's answers with the predictions the "
        "evaluation step recorded, but no step declares predictions: add predictions: to the evaluation step",
        "ml.yaml:23:62: deploy[0].verify.rows: 'data/missing.csv' does not exist and no step writes it; name the "
        "evaluation inputs (e.g. the test split a step writes)",
        "ml.yaml:24:41: deploy[1].port: port 5055 is the front of target 'a' already; give each mlflow_serve target "
        "its own port"]


AZURE = ("{name: %s, type: azureml_endpoint, workspace: /subscriptions/s/resourceGroups/g/providers/"
         "Microsoft.MachineLearningServices/workspaces/w, endpoint: iris-prod, verify: %s}")


def test_azureml_endpoint_targets_get_the_same_verify_checks(project: Callable[[str], Path]) -> None:
    text = with_targets(AZURE % ("a", "{rows: data/missing.csv}"), AZURE % ("b", "{rows: build/data.csv}"))
    messages = problems_of(project(text.replace("    predictions: build/predictions.csv\n", "")
                                   .replace("  significance: {metric: accuracy, test: mcnemar}\n", "")))
    assert [m.split(": ", 1)[1].split(":", 1)[0] for m in messages] == [
        "deploy[0].verify", "deploy[0].verify.rows", "deploy[1].verify"]
    assert "'data/missing.csv' does not exist and no step writes it" in messages[1]
    config = load_config(project(with_targets(AZURE % ("a", "{rows: build/data.csv, drop: [label]}"))), env={})
    assert config.deploy[0].verify.predictions == "build/predictions.csv"  # the evaluation step's, as mlflow_serve's
