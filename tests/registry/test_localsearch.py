"""The embedded store's search syntax: the subset the bot uses works, everything else is refused loudly."""

from __future__ import annotations

import pytest

from mlops_bot.errors import UsageError
from mlops_bot.registry.base import Run
from mlops_bot.registry.local.search import order_runs, parse_filter


def run(run_id: str, start: int, end: int | None = None, status: str = "FINISHED", **metrics: float) -> Run:
    return Run(run_id, "1", status, start, end, "", name=f"name-{run_id}",
               params={"C": "1 and 2", "seed": run_id}, metrics=metrics,
               tags={"mlflow.runName": run_id, "ml-bot.key": f"k{run_id}"})


def matches(text: str, target: Run) -> bool:
    return all(predicate(target) for predicate in parse_filter(text))


@pytest.mark.parametrize(("text", "expected"), [
    ("", True),
    ("params.C = '1 and 2'", True),
    ('params.C = "1 and 2"', True),
    ("params.C != '1 and 2'", False),
    ("params.absent != 'x'", False),  # as in MLflow: a missing key matches no comparison
    ("tags.`ml-bot.key` = 'ka' AND attributes.status = 'FINISHED'", True),
    ('tags."ml-bot.key" = \'ka\'', True),
    ("tags.mlflow.runName = 'a' and status = 'FINISHED' and params.seed = 'a'", True),
    ("status = 'RUNNING'", False),
    ("attributes.end_time > 150", True),
    ("attributes.end_time > 200", False),
    ("start_time <= 100 and metrics.acc >= 0.9", True),
    ("metrics.acc < 0.9", False),
    ("metrics.absent > 0", False),
    ("attributes.run_name = 'name-a'", True),
    ("attributes.run_id != 'a'", False),
])
def test_supported_filters(text: str, expected: bool) -> None:
    assert matches(text, run("a", 100, 200, acc=0.9)) is expected


@pytest.mark.parametrize("text", [
    "params.C LIKE '1%'", "status = 'A' or status = 'B'", "tags.a IN ('x', 'y')", "(status = 'A')",
    "params.C = 1", "metrics.acc > 'x'", "nonsense = 'x'", "tags.a = 'x' and", "status 'x'",
    "attributes.start_time = 'x'", "params.C > '1'", "datasets.name = 'x'",
])
def test_unsupported_filters_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="search filter"):
        parse_filter(text)


def test_the_unknown_run_without_end_time_never_matches_a_time_filter() -> None:
    assert not matches("attributes.end_time > 0", run("a", 100, None, "RUNNING"))


def test_order_defaults_to_start_time_desc_and_supports_metrics() -> None:
    runs = [run("a", 100, acc=0.5), run("b", 300), run("c", 200, acc=0.9)]
    assert [r.run_id for r in order_runs(runs, [])] == ["b", "c", "a"]
    assert [r.run_id for r in order_runs(runs, ["attributes.start_time ASC"])] == ["a", "c", "b"]
    assert [r.run_id for r in order_runs(runs, ["metrics.acc DESC"])] == ["c", "a", "b"]  # missing last
    assert [r.run_id for r in order_runs(runs, ["metrics.acc"])] == ["a", "c", "b"]
    for bad in ("params.C DESC", "start_time SIDEWAYS", "tags.x", ""):
        with pytest.raises(UsageError, match="order_by"):
            order_runs(runs, [bad])
