"""`deploy[].rollout`: its fields as loaded (durations in seconds) and the checks a schema cannot express, each a
located problem (config/rollout.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.config import load_config
from mlops_bot.config.durations import seconds, spoken
from mlops_bot.config.model import Analysis, RolloutStep, Shadow
from tests.config.test_serving_config import problems_of, with_targets

METRICS = "metrics: 'http://127.0.0.1:9090'"


def test_a_rollout_loads_with_durations_in_seconds(project: Callable[[str], Path]) -> None:
    target = ("{name: s, type: mlflow_serve, port: 5055, rollout: {" + METRICS + ", interval: 15s, "
              "steps: [{traffic: 10, hold: 10m}, {traffic: 50, hold: 1h30m}, {traffic: 100}], "
              "shadow: {share: 20, hold: 90, min_agreement: 0.95}, "
              "analysis: [{name: errors, query: 'sum(rate(x{version=\"$version\"}[1m]))', max: 0.01}]}}")
    rollout = load_config(project(with_targets(target)), env={}).deploy[0].rollout
    assert rollout is not None
    assert rollout.steps == (RolloutStep(10, 600.0), RolloutStep(50, 5400.0), RolloutStep(100, 0.0))
    assert rollout.shadow == Shadow(20, 90.0, 0.95) and rollout.interval_s == 15.0 and not rollout.hand_off
    assert rollout.analysis == (Analysis("errors", 'sum(rate(x{version="$version"}[1m]))', max=0.01),)
    assert rollout.metrics == "http://127.0.0.1:9090"


def test_a_rollout_without_steps_goes_to_100_at_once(project: Callable[[str], Path]) -> None:
    rollout = load_config(project(with_targets("{name: s, type: mlflow_serve, port: 5055, rollout: {}}")),
                          env={}).deploy[0].rollout
    assert rollout is not None and rollout.steps == (RolloutStep(100, 0.0),)


def test_what_a_rollout_cannot_be(project: Callable[[str], Path]) -> None:
    messages = problems_of(project(with_targets(
        "{name: a, type: command, cmd: 'true', rollout: {steps: [{traffic: 100}]}}",
        "{name: b, type: mlflow_serve, port: 5055, rollout: {" + METRICS + ", steps: [{traffic: 50}, {traffic: 20},"
        " {traffic: 100}]}}",
        "{name: c, type: mlflow_serve, port: 5056, rollout: {" + METRICS + ", steps: [{traffic: 10}]}}",
        "{name: d, type: mlflow_serve, port: 5057, rollout: {analysis: [{name: e, query: up, max: 1}]}}",
        "{name: e, type: gitops, file: m.yaml, set: {a: b}, canary: {traffic_percent: 5}, pull_request: true, "
        "rollout: {" + METRICS + ", shadow: {share: 5, hold: 1m}}}",
        "{name: f, type: mlflow_serve, port: 5058, rollout: {" + METRICS + ", analysis: [{name: x, query: "
        "'up{v=\"$versoin\"}', max: 1}, {name: x, query: up, min: 2, max: 1}]}}")))
    text = "\n".join(messages)
    assert "deploy[0].rollout: a command target cannot split traffic" in text
    assert "deploy[1].rollout.steps[1].traffic: traffic 20 after 50: each step sends more traffic" in text
    assert "deploy[2].rollout.steps[0].traffic: the last step sends 10% to the new version; end with {traffic: " \
           "100}" in text
    assert "deploy[3].rollout: analysis queries and the shadow's agreement are answered by Prometheus; add " \
           "metrics:" in text
    assert "deploy[4].canary: rollout sets canaryTrafficPercent step by step; remove canary:" in text
    assert "deploy[4].pull_request: a rollout's steps are commits that must take effect" in text
    assert "deploy[4].rollout.shadow: shadow traffic needs a proxy that mirrors requests" in text
    assert "deploy[5].rollout.analysis[0].query: $versoin is not a placeholder the bot fills in ($version, " \
           "$previous, $target, $model); did you mean 'version'?" in text
    assert "deploy[5].rollout.analysis[1].name: two analysis queries are named 'x'" in text
    assert "deploy[5].rollout.analysis[1]: min 2 is above max 1: no value passes" in text
    assert all(m.startswith("ml.yaml:") for m in messages)  # each at its line


def test_the_schema_refuses_a_bad_duration_and_a_bound_missing(project: Callable[[str], Path]) -> None:
    messages = problems_of(project(with_targets(
        "{name: s, type: mlflow_serve, port: 5055, rollout: {" + METRICS + ", steps: [{traffic: 100, hold: 10 min}],"
        " analysis: [{name: e, query: up}]}}")))
    text = "\n".join(messages)
    assert "deploy[0].rollout.steps[0].hold" in text and "deploy[0].rollout.analysis[0]" in text


@pytest.mark.parametrize(("text", "value"), [("90s", 90.0), ("10m", 600.0), ("1h30m", 5400.0), ("250ms", 0.25),
                                             ("1d", 86400.0), (5, 5.0), ("1.5h", 5400.0)])
def test_durations(text: str | int, value: float) -> None:
    assert seconds(text) == value


@pytest.mark.parametrize("text", ["10", "m", "10 m", "1h 30m", "-5s", "5x"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError):
        seconds(text)


def test_spoken_durations() -> None:
    assert [spoken(s) for s in (2.5, 60, 600, 5400, 90061)] == ["2.5s", "1m", "10m", "1h30m", "1d1h1m1s"]
