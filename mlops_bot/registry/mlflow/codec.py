"""MLflow REST JSON <-> the frozen dataclasses of base.py (no I/O here)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .. import tags as names
from ..base import Experiment, MetricPoint, ModelVersion, RegisteredModel, Run


def key_values(items: Any) -> dict[str, str]:
    return {str(item["key"]): str(item.get("value", "")) for item in items or ()}


def kv_list(mapping: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in (mapping or {}).items()]


_SECONDS_BEFORE = 10**11  # as ms that is 1973; as seconds, the year 5138: a smaller stamp counts seconds
_SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


def millis(value: Any) -> int:
    """A timestamp in ms since the epoch; GitLab's MLflow API answers some (a version's creation time) in
    seconds, where MLflow uses ms."""
    number = int(float(value or 0))
    return number * 1000 if 0 < number < _SECONDS_BEFORE else number


def short_version(semver: str) -> str:
    """GitLab names versions by semantic version ("3.0.0", counted up by major): shown as MLflow's "3"; any
    other semantic version as it is."""
    match = _SEMVER.match(semver)
    return match.group(1) if match and match.group(2) == match.group(3) == "0" else semver


def wire_version(version: str) -> str:
    """The inverse of short_version: what GitLab's API is asked for."""
    return f"{version}.0.0" if version.isdigit() else version


def semver_of(doc: Mapping[str, Any]) -> str | None:
    """The semantic version a GitLab model version document carries (in `aliases`; its `version` is a database
    id), or None when it carries none."""
    found = [str(a) for a in doc.get("aliases") or () if _SEMVER.match(str(a))]
    return found[0] if len(found) == 1 else None


def version_order(version: str) -> tuple[int, ...]:
    """Sorts version names numerically ("10" after "9", "1.2.0" after "1.0.0"); anything else first."""
    parts = version.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (-1,)


def float_value(value: Any) -> float:
    # MLflow's JSON carries NaN/Infinity as the strings "NaN"/"Infinity" in some versions.
    return float(value)


def experiment(doc: Mapping[str, Any]) -> Experiment:
    return Experiment(str(doc["experiment_id"]), str(doc.get("name", "")), str(doc.get("artifact_location", "")))


def run(doc: Mapping[str, Any]) -> Run:
    info = doc.get("info", {})
    data = doc.get("data", {})
    tags = key_values(data.get("tags"))
    tags.pop(names.CREATE_TOKEN, None)
    # The latest point per key (GitLab lists every point of a metric's history here).
    latest: dict[str, tuple[int, int, float]] = {}
    for m in data.get("metrics") or ():
        point = (int(m.get("step") or 0), millis(m.get("timestamp")), float_value(m.get("value", "nan")))
        if str(m["key"]) not in latest or point[:2] >= latest[str(m["key"])][:2]:
            latest[str(m["key"])] = point
    metrics = {key: point[2] for key, point in latest.items()}
    end = info.get("end_time")
    return Run(
        run_id=str(info.get("run_id") or info.get("run_uuid")),
        experiment_id=str(info.get("experiment_id", "")),
        status=str(info.get("status", "")),
        start_time=millis(info.get("start_time")),
        end_time=millis(end) if end is not None else None,
        artifact_uri=str(info.get("artifact_uri", "")),
        name=str(info.get("run_name") or tags.get(names.MLFLOW_RUN_NAME, "")),
        params=key_values(data.get("params")),
        metrics=metrics,
        tags=tags,
    )


def metric_point(doc: Mapping[str, Any]) -> MetricPoint:
    return MetricPoint(str(doc["key"]), float_value(doc.get("value", "nan")), millis(doc.get("timestamp")),
                       int(doc.get("step") or 0))


def registered_model(doc: Mapping[str, Any]) -> RegisteredModel:
    aliases = {str(a["alias"]): str(a["version"]) for a in doc.get("aliases") or ()}
    return RegisteredModel(str(doc["name"]), str(doc.get("description", "")), aliases, key_values(doc.get("tags")))


def model_version(doc: Mapping[str, Any], aliases: tuple[str, ...] | None = None,
                  by_semver: bool = False) -> ModelVersion:
    """`aliases` overrides the document's own (search results carry none). `by_semver`: the server (GitLab)
    addresses versions by the semantic version in `aliases`, and its `version` is a database id."""
    own = tuple(str(a) for a in doc.get("aliases") or ())
    version = str(doc["version"])
    semver = semver_of(doc) if by_semver else None
    if semver is not None:
        version, own = short_version(semver), ()
    return ModelVersion(
        name=str(doc["name"]),
        version=version,
        source=str(doc.get("source", "")),
        run_id=str(doc.get("run_id", "")),
        status=str(doc.get("status", "")),
        creation_timestamp=millis(doc.get("creation_timestamp")),
        description=str(doc.get("description", "")),
        tags=key_values(doc.get("tags")),
        aliases=tuple(sorted(aliases if aliases is not None else own)),
    )


def filter_literal(value: str) -> str:
    """A string literal for MLflow's search filter syntax."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"{value!r} holds both quote characters and cannot be searched for")


def aliases_by_version(model: RegisteredModel) -> dict[str, tuple[str, ...]]:
    result: dict[str, list[str]] = {}
    for alias, version in model.aliases.items():
        result.setdefault(version, []).append(alias)
    return {version: tuple(sorted(names)) for version, names in result.items()}
