"""MLflow REST JSON <-> the frozen dataclasses of base.py (no I/O here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import tags as names
from ..base import Experiment, MetricPoint, ModelVersion, RegisteredModel, Run


def key_values(items: Any) -> dict[str, str]:
    return {str(item["key"]): str(item.get("value", "")) for item in items or ()}


def kv_list(mapping: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in (mapping or {}).items()]


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
    metrics = {str(m["key"]): float_value(m.get("value", "nan")) for m in data.get("metrics") or ()}
    end = info.get("end_time")
    return Run(
        run_id=str(info.get("run_id") or info.get("run_uuid")),
        experiment_id=str(info.get("experiment_id", "")),
        status=str(info.get("status", "")),
        start_time=int(info.get("start_time") or 0),
        end_time=int(end) if end is not None else None,
        artifact_uri=str(info.get("artifact_uri", "")),
        name=str(info.get("run_name") or tags.get(names.MLFLOW_RUN_NAME, "")),
        params=key_values(data.get("params")),
        metrics=metrics,
        tags=tags,
    )


def metric_point(doc: Mapping[str, Any]) -> MetricPoint:
    return MetricPoint(str(doc["key"]), float_value(doc.get("value", "nan")), int(doc.get("timestamp") or 0),
                       int(doc.get("step") or 0))


def registered_model(doc: Mapping[str, Any]) -> RegisteredModel:
    aliases = {str(a["alias"]): str(a["version"]) for a in doc.get("aliases") or ()}
    return RegisteredModel(str(doc["name"]), str(doc.get("description", "")), aliases, key_values(doc.get("tags")))


def model_version(doc: Mapping[str, Any], aliases: tuple[str, ...] | None = None) -> ModelVersion:
    """`aliases` overrides the document's own (search results carry none)."""
    own = tuple(str(a) for a in doc.get("aliases") or ())
    return ModelVersion(
        name=str(doc["name"]),
        version=str(doc["version"]),
        source=str(doc.get("source", "")),
        run_id=str(doc.get("run_id", "")),
        status=str(doc.get("status", "")),
        creation_timestamp=int(doc.get("creation_timestamp") or 0),
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
