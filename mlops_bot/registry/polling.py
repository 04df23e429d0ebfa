"""`events_since` for any registry, by polling and diffing (MLflow has no webhooks for runs).

The cursor is JSON: the poll time, the runs already reported that finished within the look-back window,
the newest version number and the alias map of each watched model. A run whose end_time lies more than
LOOKBACK_MS before the previous poll when it first shows up (a client clock far behind) is not reported.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import NotFound, UsageError
from . import tags as names
from .base import ModelVersion, RegisteredModel, RegistryEvent, Run

LOOKBACK_MS = 10 * 60 * 1000
TERMINAL = ("FINISHED", "FAILED", "KILLED")
_FIRST_PAGE = 50
_EXPERIMENTS_PER_SEARCH = 100


class PollSource(Protocol):
    def poll_experiment_ids(self) -> list[str]: ...
    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "",
                    order_by: Sequence[str] = (), max_results: int | None = None) -> list[Run]: ...
    def get_registered_model(self, name: str) -> RegisteredModel: ...
    def search_model_versions(self, name: str, max_results: int | None = None) -> list[ModelVersion]: ...


@dataclass
class _State:
    polled: int
    runs: list[str] = field(default_factory=list)
    versions: dict[str, tuple[int, ...]] = field(default_factory=dict)  # the newest version's order key
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)


def _decode(cursor: str) -> _State:
    try:
        doc = json.loads(cursor)
        return _State(int(doc["polled"]), [str(r) for r in doc["runs"]],
                      {str(k): _stored_key(v) for k, v in doc["versions"].items()},
                      {str(k): {str(a): str(v) for a, v in m.items()} for k, m in doc["aliases"].items()})
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UsageError(f"event cursor {cursor[:40]!r} was not written by this mlops-bot; "
                         "start again without a cursor.") from None


def _stored_key(value: object) -> tuple[int, ...]:
    """A cursor's version key: a list of ints, or one int (cursors written before semantic versions)."""
    if isinstance(value, bool) or not isinstance(value, (int, list)):
        raise TypeError(value)
    return (value,) if isinstance(value, int) else tuple(int(v) for v in value)


def version_key(version: str) -> tuple[int, ...]:
    """The order of a version: '7' -> (7,), a semantic version such as GitLab's '1.2.0' -> (1, 2, 0); anything
    else sorts before them all."""
    parts = version.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (-1,)


def _encode(state: _State) -> str:
    return json.dumps({"polled": state.polled, "runs": sorted(state.runs), "versions": state.versions,
                       "aliases": state.aliases}, sort_keys=True, separators=(",", ":"))


def events_since(source: PollSource, cursor: str | None, model_names: Sequence[str],
                 now_ms: int | None = None) -> tuple[list[RegistryEvent], str]:
    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    old = _decode(cursor) if cursor else None
    new = _State(polled=max(now, old.polled if old else now))
    events = _finished_runs(source, old, new)
    for name in dict.fromkeys(model_names):
        events.extend(_model_changes(source, name, old, new, now))
    events.sort(key=lambda e: e.timestamp)
    return events, _encode(new)


def _finished_runs(source: PollSource, old: _State | None, new: _State) -> list[RegistryEvent]:
    since = (old.polled if old else new.polled) - LOOKBACK_MS
    experiment_ids = source.poll_experiment_ids()
    found: list[Run] = []
    for start in range(0, len(experiment_ids), _EXPERIMENTS_PER_SEARCH):
        chunk = experiment_ids[start:start + _EXPERIMENTS_PER_SEARCH]
        found.extend(source.search_runs(chunk, f"attributes.end_time > {since}"))
    reported = set(old.runs) if old else None
    events = []
    for run in sorted(found, key=lambda r: (r.end_time or 0, r.run_id)):
        if run.status not in TERMINAL or run.end_time is None or _in_progress(run) or _monitoring(run):
            continue
        if run.end_time > new.polled - LOOKBACK_MS:
            new.runs.append(run.run_id)
        if reported is not None and run.run_id not in reported:
            events.append(RegistryEvent("run.finished", run.end_time, run_id=run.run_id,
                                        data={"status": run.status, "experiment_id": run.experiment_id,
                                              "name": run.name}))
    return events


def _in_progress(run: Run) -> bool:
    """A run that is part of a pipeline run still going: a child run a step's own mlflow code made (it ends
    with the step), or the pipeline run that such code ended early (the bot sets it RUNNING again, and tags
    its pipeline key only when it really finishes it). Neither is a finished run to react to."""
    if names.PARENT_RUN in run.tags:
        return True
    return (run.status == "FINISHED" and names.CONFIG_DIGEST in run.tags and names.PIPELINE_KEY not in run.tags
            and names.PARTIAL not in run.tags)


def _monitoring(run: Run) -> bool:
    """A drift check's record (flows/drift): its own events (drift.detected, drift.checked) say what it found;
    as run.finished it would look like a training run to rules such as {event: run.finished, do: [promote]}."""
    return run.tags.get(names.ROLE) == names.ROLE_MONITOR


def _model_changes(source: PollSource, name: str, old: _State | None, new: _State,
                   now: int) -> list[RegistryEvent]:
    try:
        aliases = dict(source.get_registered_model(name).aliases)
    except NotFound:
        aliases, versions = {}, []
    else:
        known = old.versions.get(name) if old else None
        versions = _versions_after(source, name, known)
    new.aliases[name] = aliases
    newest = max((version_key(v.version) for v in versions), default=())
    known = old.versions.get(name) if old else None
    new.versions[name] = max(newest, known or ())
    if old is None or known is None:
        return []  # a model we start watching now: its history is not news
    events = [RegistryEvent("model_version.created", v.creation_timestamp, model=name, version=v.version,
                            run_id=v.run_id, data={"source": v.source, "status": v.status})
              for v in sorted(versions, key=lambda v: version_key(v.version)) if version_key(v.version) > known]
    return events + _alias_changes(name, old.aliases.get(name, {}), aliases, now)


def _versions_after(source: PollSource, name: str, known: tuple[int, ...] | None) -> list[ModelVersion]:
    """Versions newer than `known` (all of them when nothing is known), reading only what is needed."""
    first = source.search_model_versions(name, max_results=_FIRST_PAGE)
    if known is not None and (len(first) < _FIRST_PAGE or any(version_key(v.version) <= known for v in first)):
        return first
    if known is None:
        return first[:1]  # only the newest number matters for a baseline
    return source.search_model_versions(name)


def _alias_changes(name: str, before: Mapping[str, str], after: Mapping[str, str], now: int) -> list[RegistryEvent]:
    events = []
    for alias, version in sorted(after.items()):
        if before.get(alias) != version:
            events.append(RegistryEvent("alias.set", now, model=name, version=version, alias=alias,
                                        data={"previous_version": before.get(alias, "")}))
    for alias, version in sorted(before.items()):
        if alias not in after:
            events.append(RegistryEvent("alias.deleted", now, model=name, version=version, alias=alias))
    return events

