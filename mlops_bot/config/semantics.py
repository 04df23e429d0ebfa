"""Checks a schema cannot express: the steps form a DAG, every dep is produced or present, outs do not
overlap, params and metrics named in ml.yaml exist. Reads the raw document defensively, because these
checks run even when the schema found problems (all problems are reported at once)."""

from __future__ import annotations

from typing import Any

from ..errors import Problem
from ..support.paths import normalise, overlaps
from .lookup import close_match, flatten_keys, load_yaml_keys
from .source import Document

_RULE_KEYS = ("threshold", "min_absolute_change", "min_relative_change", "max_regression")


def semantic_problems(doc: Document) -> list[Problem]:
    data = doc.data
    steps = {n: s for n, s in _mapping(data.get("pipeline")).items() if isinstance(s, dict)}
    produced = _produced_files(steps)
    problems = _overlapping_outs(doc, produced)
    problems += _unresolved_deps(doc, steps, produced)
    problems += _cycles(doc, steps, produced)
    problems += _params(doc, steps)
    problems += _model_artifact(doc, produced)
    problems += _criteria(doc, steps)
    problems += _unique_deploy_names(doc)
    return problems


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]  # the schema reports the wrong type; do not add follow-on problems
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _produced_files(steps: dict[str, dict[str, Any]]) -> list[tuple[str, tuple[str | int, ...], str]]:
    """(step, yaml path, file) for each out, metrics file and predictions file."""
    found: list[tuple[str, tuple[str | int, ...], str]] = []
    for name, step in steps.items():
        found += [(name, ("pipeline", name, "outs", i), out) for i, out in enumerate(_strings(step.get("outs")))]
        for key in ("metrics", "predictions"):
            if isinstance(step.get(key), str):
                found.append((name, ("pipeline", name, key), step[key]))
    return found


def _overlapping_outs(doc: Document, produced: list[tuple[str, Any, str]]) -> list[Problem]:
    problems = []
    for i, (step, where, out) in enumerate(produced):
        for other_step, _, other in produced[:i]:
            if overlaps(out, other) and not (step == other_step and normalise(out) == normalise(other)):
                problems.append(doc.problem(where, f"'{out}' is also written by step '{other_step}' ('{other}'); "
                                            "each file may have one producer"))
                break
    return problems


def _producers(dep: str, produced: list[tuple[str, Any, str]]) -> set[str]:
    return {step for step, _, out in produced if overlaps(dep, out)}


def _unresolved_deps(doc: Document, steps: dict[str, dict[str, Any]], produced: list[Any]) -> list[Problem]:
    problems = []
    outs = [out for _, _, out in produced]
    for name, step in steps.items():
        for i, dep in enumerate(_strings(step.get("deps"))):
            if _producers(dep, produced) or (doc.root / dep).exists():
                continue
            hint = close_match(dep, outs) or "; add it to the outs of the step that writes it, or fix the path"
            message = f"'{dep}' does not exist and no step writes it{hint}"
            problems.append(doc.problem(("pipeline", name, "deps", i), message))
    return problems


def _cycles(doc: Document, steps: dict[str, dict[str, Any]], produced: list[Any]) -> list[Problem]:
    def upstream_of(name: str, dep: str) -> set[str]:
        found = _producers(dep, produced)
        # A dep written by this step and another is the overlapping-outs problem, not also a cycle.
        return found - {name} if len(found) > 1 else found

    edges = {name: sorted({p for dep in _strings(step.get("deps")) for p in upstream_of(name, dep)})
             for name, step in steps.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    problems: list[Problem] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for upstream in edges.get(node, []):
            if state.get(upstream) == 1:
                cycle = [*trail[trail.index(upstream):], upstream] if upstream in trail else [node, node]
                problems.append(doc.problem(("pipeline", node, "deps"),
                                            "the steps form a cycle: " + " -> ".join(reversed(cycle))))
            elif upstream not in state:
                visit(upstream, [*trail, upstream])
        state[node] = 2

    for name in steps:
        if name not in state:
            visit(name, [name])
    return problems


def _params(doc: Document, steps: dict[str, dict[str, Any]]) -> list[Problem]:
    wanted = [(name, i, key) for name, step in steps.items() for i, key in enumerate(_strings(step.get("params")))]
    if not wanted:
        return []
    params_file = doc.data.get("params")
    if not isinstance(params_file, str):
        name, i, _ = wanted[0]
        return [doc.problem(("pipeline", name, "params", i), "steps use params but no `params:` file is declared")]
    keys, error = load_yaml_keys(doc.root / params_file)
    if error:
        return [doc.problem(("params",), f"cannot read '{params_file}': {error}")]
    flat = flatten_keys(keys)
    return [doc.problem(("pipeline", name, "params", i), f"'{key}' is not in {params_file}{close_match(key, flat)}")
            for name, i, key in wanted if key not in flat]


def _model_artifact(doc: Document, produced: list[Any]) -> list[Problem]:
    artifact = _mapping(doc.data.get("model")).get("artifact")
    if not isinstance(artifact, str) or not produced or _producers(artifact, produced):
        return []
    return [doc.problem(("model", "artifact"), f"'{artifact}' is not written by any step; add it to a step's outs")]


def _criteria(doc: Document, steps: dict[str, dict[str, Any]]) -> list[Problem]:
    compare = _mapping(doc.data.get("compare"))
    criteria = [c for c in compare.get("criteria", []) if isinstance(c, dict)] if isinstance(
        compare.get("criteria"), list) else []
    problems = []
    has_metrics = any(isinstance(s.get("metrics"), str) for s in steps.values())
    if criteria and not has_metrics:
        problems.append(doc.problem(("compare", "criteria"), "criteria name metrics but no step declares a "
                                    "`metrics` file; add one to the step that evaluates the model"))
    known = _known_metrics(doc, steps)
    for i, criterion in enumerate(compare.get("criteria", []) if isinstance(compare.get("criteria"), list) else []):
        if not isinstance(criterion, dict):
            continue
        metric = criterion.get("metric")
        if known is not None and isinstance(metric, str) and metric not in known:
            problems.append(doc.problem(("compare", "criteria", i, "metric"),
                                        f"'{metric}' is not produced by any step{close_match(metric, known)}"))
        if not any(k in criterion for k in _RULE_KEYS):
            problems.append(doc.problem(("compare", "criteria", i), "this criterion sets no rule; add threshold, "
                                        "min_absolute_change, min_relative_change or max_regression"))
    significance = compare.get("significance")
    if isinstance(significance, dict) and not any(isinstance(s.get("predictions"), str) for s in steps.values()):
        problems.append(doc.problem(("compare", "significance"), "a significance test needs per-row predictions; "
                                    "declare `predictions:` on the step that evaluates the model"))
    return problems


def _known_metrics(doc: Document, steps: dict[str, dict[str, Any]]) -> set[str] | None:
    """Metric names from the metrics files of an earlier run; None (unknown) until all of them exist."""
    files = [doc.root / s["metrics"] for s in steps.values() if isinstance(s.get("metrics"), str)]
    if not files or not all(f.is_file() for f in files):
        return None
    from ..errors import BotError
    from ..metrics.files import read_metrics

    names: set[str] = set()
    for path in files:
        try:
            names |= set(read_metrics(path))
        except BotError:
            return None  # a broken metrics file is the runner's error to report, not the config's
    return names


def _unique_deploy_names(doc: Document) -> list[Problem]:
    targets = doc.data.get("deploy")
    seen: set[str] = set()
    problems = []
    for i, target in enumerate(targets if isinstance(targets, list) else []):
        name = target.get("name") if isinstance(target, dict) else None
        if isinstance(name, str) and name in seen:
            problems.append(doc.problem(("deploy", i, "name"), f"a deploy target named '{name}' exists already"))
        if isinstance(name, str):
            seen.add(name)
    return problems
