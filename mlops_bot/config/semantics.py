"""Checks a schema cannot express: the steps form a DAG, every dep is produced or present, outs do not
overlap, params and metrics named in ml.yaml exist, `monitor:` is consistent (config/monitor.py). Reads the raw
document defensively, because these checks run even when the schema found problems (all problems are reported
at once)."""

from __future__ import annotations

from typing import Any

from ..errors import Problem
from .backends import backend_problems
from .lookup import Writers, close_match, exists, flatten_keys, is_file, load_yaml_keys, path_problem
from .monitor import monitor_problems
from .passenv import pass_env_problems
from .rollout import rollout_problems
from .serving import serving_problems
from .significance import significance_problems
from .source import Document, YamlPath
from .stages import stage_problems

_RULE_KEYS = ("threshold", "min_absolute_change", "min_relative_change", "max_regression")
_HINTS = 20  # did-you-mean hints per check: each compares with every choice


def semantic_problems(doc: Document) -> list[Problem]:
    data = doc.data
    steps = {n: s for n, s in _mapping(data.get("pipeline")).items() if isinstance(s, dict)}
    writers = Writers(_produced_files(steps))
    problems = _unusable_paths(doc, steps)
    overlapping = _overlapping_outs(doc, writers)
    problems += overlapping
    problems += _unresolved_deps(doc, steps, writers)
    problems += [] if overlapping else _cycles(doc, steps, writers)  # each file has one producer first
    problems += _params(doc, steps)
    problems += _model_artifact(doc, writers)
    problems += _criteria(doc, steps)
    problems += _unique_deploy_names(doc)
    problems += pass_env_problems(doc)
    problems += _unity_catalog_name(doc)
    problems += monitor_problems(doc, steps, writers)
    problems += stage_problems(doc)
    problems += serving_problems(doc, steps, writers)
    problems += rollout_problems(doc)
    problems += backend_problems(doc)
    return problems


def unity_catalog_name_problem(name: str) -> str:
    """Why Unity Catalog would not take `name` as a model's name ("" when it would): three parts, catalog.schema.model,
    each without space, '/' or control characters, at most 255 characters, stored in lower case (Databricks' "Names"
    page, sql-ref-names)."""
    parts = name.split(".")
    bad = [p for p in parts if len(p) > 255 or any(c in " /" or ord(c) < 32 or ord(c) == 127 for c in p)]
    if bad:
        return (f"{name!r} is not a Unity Catalog model name: no part of catalog.schema.model may hold a space, '/' "
                "or a control character, or pass 255 characters")
    if len(parts) != 3 or not all(parts):
        return (f"{name!r} is not a Unity Catalog model name: write it as catalog.schema.model (for example "
                f"main.ml.{parts[-1] or 'model'})")
    if name != name.lower():
        return f"{name!r}: Unity Catalog stores names in lower case; write {name.lower()!r}"
    return ""


def _unity_catalog_name(doc: Document) -> list[Problem]:
    tracking, model = _mapping(doc.data.get("tracking")), _mapping(doc.data.get("model"))
    name = model.get("name")
    if tracking.get("registry_uri") != "databricks-uc" or not isinstance(name, str):
        return []
    problem = unity_catalog_name_problem(name)
    return [doc.problem(("model", "name"), f"{problem} (tracking.registry_uri is databricks-uc)")] if problem else []


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


def _unusable_paths(doc: Document, steps: dict[str, dict[str, Any]]) -> list[Problem]:
    """Paths no file system can hold (a 300-byte name, a newline) are refused before any check asks the disk."""
    found: list[tuple[tuple[str | int, ...], Any]] = [
        (("model", "artifact"), _mapping(doc.data.get("model")).get("artifact")), (("params",), doc.data.get("params")),
        (("report", "file"), _mapping(doc.data.get("report")).get("file"))]
    for name, step in steps.items():
        for key in ("deps", "outs"):
            found += [(("pipeline", name, key, i), p) for i, p in enumerate(_strings(step.get(key)))]
        found += [(("pipeline", name, key), step.get(key)) for key in ("metrics", "predictions")]
    targets = doc.data.get("deploy")
    for i, target in enumerate(targets if isinstance(targets, list) else []):
        found.append((("deploy", i, "file"), _mapping(target).get("file")))
    return [doc.problem(where, f"{_shorter(path)} {why}")
            for where, path in found if isinstance(path, str) and (why := path_problem(path))]


def _shorter(path: str) -> str:
    return repr(path) if len(path) <= 60 else repr(path[:57]) + "..."


def _overlapping_outs(doc: Document, writers: Writers) -> list[Problem]:
    problems = []
    for i, (_, where, out) in enumerate(writers.produced):
        j = writers.conflict(i)
        if j is not None:
            other_step, _, other = writers.produced[j]
            problems.append(doc.problem(where, f"'{out}' is also written by step '{other_step}' ('{other}'); "
                                        "each file may have one producer"))
    return problems


def _unresolved_deps(doc: Document, steps: dict[str, dict[str, Any]], writers: Writers) -> list[Problem]:
    problems: list[Problem] = []
    outs = [out for _, _, out in writers.produced]
    for name, step in steps.items():
        for i, dep in enumerate(_strings(step.get("deps"))):
            if writers.written(dep) or path_problem(dep) or exists(doc.root / dep) is not False:
                continue  # an unusable path is reported as such; one the disk will not answer about is left be
            hint = close_match(dep, outs) if len(problems) < _HINTS else ""
            hint = hint or "; add it to the outs of the step that writes it, or fix the path"
            message = f"'{dep}' does not exist and no step writes it{hint}"
            problems.append(doc.problem(("pipeline", name, "deps", i), message))
    return problems


def _cycles(doc: Document, steps: dict[str, dict[str, Any]], writers: Writers) -> list[Problem]:
    def upstream_of(name: str, dep: str) -> set[str]:
        found = writers.steps(dep)
        # A dep written by this step and another is the overlapping-outs problem, not also a cycle.
        return found - {name} if len(found) > 1 else found

    edges = {name: sorted({p for dep in _strings(step.get("deps")) for p in upstream_of(name, dep)})
             for name, step in steps.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    problems: list[Problem] = []
    for start in steps:  # depth first, without recursion: a pipeline may have thousands of steps in a row
        if start in state:
            continue
        trail, todo, at = [start], [iter(edges[start])], {start: 0}
        state[start] = 1
        while todo:
            upstream = next(todo[-1], None)
            if upstream is None:
                state[trail[-1]] = 2
                del at[trail.pop()]
                todo.pop()
            elif state.get(upstream) == 1:
                cycle = [*trail[at[upstream]:], upstream]
                problems.append(doc.problem(("pipeline", trail[-1], "deps"), "the steps form a cycle: " + _arrows(
                    list(reversed(cycle)))))
            elif upstream not in state:
                state[upstream], at[upstream] = 1, len(trail)
                trail.append(upstream)
                todo.append(iter(edges.get(upstream, [])))
    return problems


def _arrows(names: list[str]) -> str:
    shown = names if len(names) <= 10 else [*names[:5], f"({len(names) - 10} more)", *names[-5:]]
    return " -> ".join(shown)


def _params(doc: Document, steps: dict[str, dict[str, Any]]) -> list[Problem]:
    wanted = [(name, i, key) for name, step in steps.items() for i, key in enumerate(_strings(step.get("params")))]
    if not wanted:
        return []
    params_file = doc.data.get("params")
    if not isinstance(params_file, str):
        name, i, _ = wanted[0]
        return [doc.problem(("pipeline", name, "params", i), "steps use params but no `params:` file is declared")]
    if path_problem(params_file):
        return []
    keys, error = load_yaml_keys(doc.root / params_file)
    if error:
        return [doc.problem(("params",), f"cannot read '{params_file}': {error}")]
    flat = flatten_keys(keys)
    missing = [(name, i, key) for name, i, key in wanted if key not in flat]
    return [doc.problem(("pipeline", name, "params", i), f"'{key}' is not in {params_file}"
                        f"{close_match(key, flat) if n < _HINTS else ''}") for n, (name, i, key) in enumerate(missing)]


def _model_artifact(doc: Document, writers: Writers) -> list[Problem]:
    artifact = _mapping(doc.data.get("model")).get("artifact")
    if not isinstance(artifact, str) or not writers.produced or writers.written(artifact):
        return []
    return [doc.problem(("model", "artifact"), f"'{artifact}' is not written by any step; add it to a step's outs")]


def _criteria(doc: Document, steps: dict[str, dict[str, Any]]) -> list[Problem]:
    """compare.criteria and each stage's own criteria (promote.stages[].criteria), checked alike."""
    compare = _mapping(doc.data.get("compare"))
    lists: list[tuple[YamlPath, Any]] = [(("compare", "criteria"), compare.get("criteria"))]
    stages = _mapping(doc.data.get("promote")).get("stages")
    lists += [(("promote", "stages", i, "criteria"), s.get("criteria"))
              for i, s in enumerate(stages if isinstance(stages, list) else []) if isinstance(s, dict)]
    lists = [(where, items) for where, items in lists if isinstance(items, list)]
    problems = []
    has_metrics = any(isinstance(s.get("metrics"), str) for s in steps.values())
    known = _known_metrics(doc, steps) if lists else None
    for where, items in lists:
        if any(isinstance(c, dict) for c in items) and not has_metrics:
            problems.append(doc.problem(where, "criteria name metrics but no step declares a `metrics` file; add "
                                        "one to the step that evaluates the model"))
        for i, criterion in enumerate(items):
            if not isinstance(criterion, dict):
                continue
            metric = criterion.get("metric")
            if known is not None and isinstance(metric, str) and metric not in known:
                problems.append(doc.problem((*where, i, "metric"),
                                            f"'{metric}' is not produced by any step{close_match(metric, known)}"))
            if not any(k in criterion for k in _RULE_KEYS):
                problems.append(doc.problem((*where, i), "this criterion sets no rule; add threshold, "
                                            "min_absolute_change, min_relative_change or max_regression"))
    return problems + significance_problems(doc, steps)


def _known_metrics(doc: Document, steps: dict[str, dict[str, Any]]) -> set[str] | None:
    """Metric names from the metrics files of an earlier run, and those its steps logged to the tracking run
    themselves (config/logged); None (unknown) until all the metrics files exist."""
    declared = [s["metrics"] for s in steps.values() if isinstance(s.get("metrics"), str)]
    files = [doc.root / name for name in declared]
    if not files or any(path_problem(name) for name in declared) or not all(is_file(f) for f in files):
        return None
    from ..errors import BotError
    from ..metrics.files import read_metrics
    from .logged import recorded_metrics

    names = recorded_metrics(doc.root)  # what the steps' own mlflow code logged in the last recorded run
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
