"""The pipeline as a graph: which step feeds which, in what order, and what lies downstream (pure).

A step depends on another when one of its deps is, contains or lies inside one of the other's outs
(support/paths.py: the same rule validation applies). The metrics and predictions files a step declares
count as its outs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..config.model import Step
from ..errors import UsageError
from ..support.paths import inside_project, normalise, overlaps


def step_outs(step: Step) -> tuple[str, ...]:
    """Declared outs plus the metrics and predictions files, normalised, each once."""
    extra = tuple(p for p in (step.metrics, step.predictions) if p)
    return tuple(dict.fromkeys(normalise(p) for p in (*step.outs, *extra)))


def _check_outs(steps: Mapping[str, Step], source: str) -> None:
    writers: list[tuple[str, str]] = []
    for name, step in steps.items():
        for out in step_outs(step):
            if not inside_project(out):
                raise UsageError(
                    f"{source}: pipeline.{name}.outs: '{out}' is not inside the project; "
                    "outs are deleted before their step runs, so they must be paths below ml.yaml's directory."
                )
            for other, other_out in writers:
                if other != name and overlaps(out, other_out):
                    raise UsageError(
                        f"{source}: steps '{other}' and '{name}' both write '{other_out}'"
                        + (f" / '{out}'" if out != other_out else "")
                        + "; give each out exactly one step."
                    )
            writers.append((name, out))


def edges(steps: Mapping[str, Step], source: str = "ml.yaml") -> dict[str, set[str]]:
    """step -> the steps it depends on. Refuses two steps writing the same (or overlapping) out."""
    _check_outs(steps, source)
    producers = [(name, out) for name, step in steps.items() for out in step_outs(step)]
    result: dict[str, set[str]] = {name: set() for name in steps}
    for name, step in steps.items():
        for dep in step.deps:
            result[name].update(p for p, out in producers if p != name and overlaps(dep, out))
    return result


def order(steps: Mapping[str, Step], source: str = "ml.yaml") -> list[str]:
    """Steps in dependency order; ties keep the file order. Raises UsageError naming a cycle."""
    graph = edges(steps, source)
    done: list[str] = []
    state: dict[str, str] = {}  # name -> "visiting" | "done"

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = [*path[path.index(name):], name]
            raise UsageError(f"{source}: the pipeline has a cycle: {' -> '.join(cycle)}; "
                             "a step cannot depend on its own outs, directly or through others.")
        state[name] = "visiting"
        for dep in sorted(graph[name], key=list(steps).index):
            visit(dep, [*path, name])
        state[name] = "done"
        done.append(name)

    for name in steps:
        visit(name, [])
    return done


def upstream(graph: Mapping[str, set[str]], names: Iterable[str]) -> set[str]:
    """`names` and every step they depend on, transitively."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return seen


def downstream(graph: Mapping[str, set[str]], names: Iterable[str]) -> set[str]:
    """`names` and every step that depends on them, transitively."""
    reverse: dict[str, set[str]] = {name: set() for name in graph}
    for name, deps in graph.items():
        for dep in deps:
            reverse[dep].add(name)
    return upstream(reverse, names)
