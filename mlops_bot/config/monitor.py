"""Checks of `monitor:` a schema cannot express: a column is compared as numbers or as categories, not both; with
`features` given, a column listed as numeric or categorical is one of them; the command that fetches the current
data sees no secret; and without `reference`, the pipeline says where the champion's training data is (the
tabular deps of the step that writes model.artifact), since `mlops-bot drift` finds it there."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from ..errors import Problem
from ..support.environment import is_forbidden
from .lookup import Writers, close_match, path_problem
from .source import Document

TABULAR = (".csv", ".tsv", ".parquet", ".pq")  # what mlops-bot drift reads


def monitor_problems(doc: Document, steps: dict[str, dict[str, Any]], writers: Writers) -> list[Problem]:
    monitor = doc.data.get("monitor")
    if not isinstance(monitor, dict):
        return []
    problems = _paths(doc, monitor) + _columns(doc, monitor) + _pass_env(doc, monitor)
    if "reference" not in monitor:
        problems += _lineage(doc, steps, writers)
    return problems


def _names(value: Any) -> list[tuple[int, str]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, str)] if isinstance(value, list) else []


def _columns(doc: Document, monitor: dict[str, Any]) -> list[Problem]:
    numeric, categorical = _names(monitor.get("numeric")), _names(monitor.get("categorical"))
    as_numbers = {name for _, name in numeric}
    problems = [doc.problem(("monitor", "categorical", i), f"'{name}' is listed in monitor.numeric too; a column is "
                            "compared as numbers or as categories, not both: remove it from one of the lists")
                for i, name in categorical if name in as_numbers]
    if "features" not in monitor:
        return problems
    features = [name for _, name in _names(monitor.get("features"))]
    for key, listed in (("numeric", numeric), ("categorical", categorical)):
        problems += [doc.problem(("monitor", key, i), f"'{name}' is not in monitor.features, so it is never "
                                 f"compared; add it to features or remove it here{close_match(name, features)}")
                     for i, name in listed if name not in features]
    return problems


def _pass_env(doc: Document, monitor: dict[str, Any]) -> list[Problem]:
    current = monitor.get("current")
    names = _names(current.get("pass_env")) if isinstance(current, dict) else []
    deploy = doc.data.get("deploy")
    targets = deploy if isinstance(deploy, list) else []
    secrets = {t["secret_env"] for t in targets if isinstance(t, dict) and isinstance(t.get("secret_env"), str)}
    return [doc.problem(("monitor", "current", "pass_env", i), f"{name} is never passed to the command that fetches "
                        "the current data (it is a forge token, a CI job credential or one of the bot's own "
                        "secrets); remove it from pass_env")
            for i, name in names if is_forbidden(name, secrets)]


def _paths(doc: Document, monitor: dict[str, Any]) -> list[Problem]:
    current = monitor.get("current")
    found: list[tuple[tuple[str | int, ...], Any]] = [(("monitor", "reference"), monitor.get("reference")),
                                                        (("monitor", "report"), monitor.get("report"))]
    if isinstance(current, dict):
        found.append((("monitor", "current", "path"), current.get("path")))
    else:
        found.append((("monitor", "current"), current))
    return [doc.problem(where, f"{path!r} {why}"[:300]) for where, path in found
            if isinstance(path, str) and (why := path_problem(path))]


def _lineage(doc: Document, steps: dict[str, dict[str, Any]], writers: Writers) -> list[Problem]:
    artifact = doc.data.get("model", {}).get("artifact") if isinstance(doc.data.get("model"), dict) else None
    if not isinstance(artifact, str) or not steps:
        return []
    trainers = sorted(writers.steps(artifact))
    if not trainers:
        return []  # model.artifact written by no step: reported as such already
    step = steps.get(trainers[0], {})
    listed = step.get("deps")
    deps = listed if isinstance(listed, list) else []
    if any(isinstance(d, str) and PurePosixPath(d).suffix.lower() in TABULAR for d in deps):
        return []
    return [doc.problem(("monitor",), f"no reference is set and step '{trainers[0]}' (which writes "
                        f"{artifact}) has no .csv, .tsv or .parquet dep to take as the champion's training data; "
                        "set monitor.reference to the reference data", key=True)]
