from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops_bot.config.model import Step
from mlops_bot.errors import UsageError
from mlops_bot.pipeline import dag


def steps(*items: Step) -> dict[str, Step]:
    return {s.name: s for s in items}


PIPE = steps(
    Step("evaluate", "e", deps=("build/model/weights.bin", "build/test.csv"), metrics="build/metrics.json"),
    Step("train", "t", deps=("./build//train.csv",), outs=("build/model/",)),
    Step("prepare", "p", deps=("data",), outs=("build/train.csv", "build/test.csv")),
    Step("report", "r", deps=("build",)),
)


def test_order_follows_deps_not_file_order() -> None:
    assert dag.order(PIPE) == ["prepare", "train", "evaluate", "report"]


def test_edges_match_inside_and_containing_paths() -> None:
    graph = dag.edges(PIPE)
    assert graph["evaluate"] == {"train", "prepare"}  # a file inside the model dir, and an exact out
    assert graph["train"] == {"prepare"}  # normalised './build//train.csv'
    assert graph["report"] == {"prepare", "train", "evaluate"}  # 'build' contains every out
    assert graph["prepare"] == set()


def test_downstream_and_upstream_sets() -> None:
    graph = dag.edges(PIPE)
    assert dag.downstream(graph, ["train"]) == {"train", "evaluate", "report"}
    assert dag.downstream(graph, ["report"]) == {"report"}
    assert dag.upstream(graph, ["evaluate"]) == {"evaluate", "train", "prepare"}


def test_cycle_is_named() -> None:
    cyclic = steps(Step("a", "a", deps=("y",), outs=("x",)), Step("b", "b", deps=("x",), outs=("y",)))
    with pytest.raises(UsageError, match=r"cycle: a -> b -> a"):
        dag.order(cyclic)


def test_two_steps_writing_the_same_out_are_refused() -> None:
    twice = steps(Step("a", "a", outs=("build/x",)), Step("b", "b", outs=("./build/x",)))
    with pytest.raises(UsageError, match=r"steps 'a' and 'b' both write 'build/x'"):
        dag.edges(twice)


def test_nested_outs_of_two_steps_are_refused() -> None:
    nested = steps(Step("a", "a", outs=("build",)), Step("b", "b", metrics="build/m.json"))
    with pytest.raises(UsageError, match=r"both write 'build' / 'build/m.json'"):
        dag.order(nested)


@pytest.mark.parametrize("out", ["../elsewhere", "/tmp/x", ".", "a/../.."])
def test_outs_outside_the_project_are_refused(out: str) -> None:
    with pytest.raises(UsageError, match="not inside the project"):
        dag.edges(steps(Step("a", "a", outs=(out,))))


def test_step_outs_include_metrics_and_predictions_once() -> None:
    step = Step("e", "e", outs=("build/m.json", "x"), metrics="build/m.json", predictions="p.csv")
    assert dag.step_outs(step) == ("build/m.json", "x", "p.csv")


def test_dag_module_is_pure() -> None:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(dag))
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported <= {"__future__", "collections.abc", "config.model", "errors", "support.paths"}, imported


@given(st.lists(st.sets(st.integers(0, 11), max_size=4), min_size=1, max_size=12))
def test_order_respects_every_edge_of_a_random_dag(wants: list[set[int]]) -> None:
    # step i writes out/i and reads out/j only for j < i: always acyclic; file order is shuffled by reversing
    pipe = {f"s{i}": Step(f"s{i}", "x", deps=tuple(f"out/{j}" for j in sorted(w) if j < i), outs=(f"out/{i}",))
            for i, w in reversed(list(enumerate(wants)))}
    position = {name: n for n, name in enumerate(dag.order(pipe))}
    for name, deps in dag.edges(pipe).items():
        assert all(position[d] < position[name] for d in deps)
    assert sorted(position) == sorted(pipe)
