"""Step cache keys and ml.lock, the committed record of each step's last successful execution.

A step's key covers its command, the content hash of every dep, the values of its declared params, its
declared env and the list of its outs. The step is cached when that key equals the one in ml.lock and
its outs still hash as recorded. ml.lock stores env only as a digest: values may come from secrets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config.compose import explain, load_yaml
from ..config.model import Step
from ..errors import UsageError
from ..support.files import write_atomic
from ..support.paths import normalise, overlaps
from ..support.urls import redact_text
from .dag import step_outs
from .hashing import Hasher, hash_bytes

LOCK_FILE = "ml.lock"
LOCK_SCHEMA = 1
# libyaml reads faster with the same result; writing stays pure-Python so ml.lock is byte-identical everywhere.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_HEADER = "# Written by `mlops-bot run`: each step's last successful execution. Commit it with your code.\n"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class LockEntry:
    key: str
    cmd: str | list[str]
    deps: Mapping[str, str | None]
    params: Mapping[str, Any]
    env: str  # digest of the declared env
    outs: Mapping[str, str | None] = field(default_factory=dict)

    def as_yaml(self) -> dict[str, Any]:
        return {"key": self.key, "cmd": self.cmd, "deps": dict(self.deps), "params": dict(self.params),
                "env": self.env, "outs": dict(self.outs)}


def step_inputs(step: Step, hasher: Hasher, params: Mapping[str, Any]) -> LockEntry:
    """The step's current inputs and key; `outs` is left empty (filled in once the step has run)."""
    cmd: str | list[str] = step.cmd if isinstance(step.cmd, str) else list(step.cmd)
    deps = {normalise(d): hasher.hash(d) for d in step.deps}
    env = hash_bytes(canonical(dict(step.env)).encode())
    values = {k: params[k] for k in step.params}
    key = hash_bytes(canonical({"cmd": cmd, "deps": deps, "params": values, "env": env,
                                "outs": list(step_outs(step))}).encode())
    return LockEntry(key=key, cmd=cmd, deps=deps, params=values, env=env)


def pipeline_key(steps: Mapping[str, Step], graph: Mapping[str, set[str]], hasher: Hasher,
                 params: Mapping[str, Any]) -> str:
    """A key for the whole pipeline computable before anything runs (so on a fresh CI runner): each step
    contributes its command, params, env, outs, the content of deps no step writes and, for deps a step
    writes, that upstream step's own key - a Merkle chain over the sources, not over produced files."""
    keys: dict[str, str] = {}

    def key_of(name: str) -> str:
        if name not in keys:
            step = steps[name]
            writes = [out for up in graph[name] for out in step_outs(steps[up])]
            produced = sorted(d for d in map(normalise, step.deps) if any(overlaps(d, out) for out in writes))
            external = {d: hasher.hash(d) for d in map(normalise, step.deps) if d not in produced}
            cmd = step.cmd if isinstance(step.cmd, str) else list(step.cmd)
            keys[name] = hash_bytes(canonical({
                "cmd": cmd, "params": {k: params[k] for k in step.params}, "env": dict(step.env),
                "outs": list(step_outs(step)), "deps": external, "produced": produced,
                "upstream": {up: key_of(up) for up in sorted(graph[name])}}).encode())
        return keys[name]

    return hash_bytes(canonical({name: key_of(name) for name in sorted(steps)}).encode())


def inputs_hash(steps: Mapping[str, Step], hasher: Hasher) -> str:
    """One hash of the content of every dep that no step writes (the data and code the pipeline starts
    from): the lineage tag `mlops_bot.data_hash`, equal on any machine for the same inputs."""
    outs = [out for step in steps.values() for out in step_outs(step)]
    external = sorted({d for step in steps.values() for d in map(normalise, step.deps)
                       if not any(overlaps(d, out) for out in outs)})
    return hash_bytes(canonical({d: hasher.hash(d) for d in external}).encode())


def hash_outs(step: Step, hasher: Hasher) -> dict[str, str | None]:
    return {out: hasher.hash(out) for out in step_outs(step)}


def stale_reasons(step: Step, now: LockEntry, last: LockEntry | None, hasher: Hasher) -> list[str]:
    """Why the step must run ([] = cached): what changed since its last successful execution."""
    if last is None:
        return ["never run (not in ml.lock)"]
    reasons = []
    if now.cmd != last.cmd:
        reasons.append("cmd changed")
    for path in sorted(set(now.deps) | set(last.deps)):
        if path not in last.deps:
            reasons.append(f"dep '{path}' added")
        elif path not in now.deps:
            reasons.append(f"dep '{path}' removed")
        elif now.deps[path] is None:
            reasons.append(f"dep '{path}' is missing")
        elif now.deps[path] != last.deps[path]:
            reasons.append(f"dep '{path}' changed")
    for name in sorted(set(now.params) | set(last.params)):
        old, new = last.params.get(name, "<unset>"), now.params.get(name, "<unset>")
        if canonical(old) != canonical(new):
            reasons.append(f"param '{name}' changed ({redact_text(repr(old))} -> {redact_text(repr(new))})")
    if now.env != last.env:
        reasons.append("env changed")
    if not reasons and now.key != last.key:
        reasons.append("outs changed")
    if not reasons:
        reasons.extend(_out_reasons(step, last, hasher))
    return reasons


def _out_reasons(step: Step, last: LockEntry, hasher: Hasher) -> list[str]:
    reasons = []
    for out, digest in hash_outs(step, hasher).items():
        if digest is None:
            reasons.append(f"out '{out}' is missing")
        elif digest != last.outs.get(out):
            reasons.append(f"out '{out}' was modified")
    return reasons


def read_lock(path: Path) -> dict[str, LockEntry]:
    """Entries by step name; a missing ml.lock is an empty one."""
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise UsageError(f"{where}: not valid YAML (a merge conflict?); fix it, or delete it and run again "
                         "to rebuild it (every step will re-run).") from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict) or doc.get("schema") != LOCK_SCHEMA or not isinstance(doc.get("steps"), dict):
        raise UsageError(f"{path}: not an ml.lock this version understands (expected 'schema: {LOCK_SCHEMA}' "
                         "and 'steps:'); delete it and run again to rebuild it.")
    return {name: _entry(path, name, raw) for name, raw in doc["steps"].items()}


def _entry(path: Path, name: str, raw: Any) -> LockEntry:
    try:
        return LockEntry(key=str(raw["key"]), cmd=raw["cmd"], deps=dict(raw.get("deps") or {}),
                         params=dict(raw.get("params") or {}), env=str(raw.get("env", "")),
                         outs=dict(raw.get("outs") or {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: steps.{name} is malformed ({exc}); delete that entry and run again.") from exc


def write_lock(path: Path, entries: Mapping[str, LockEntry]) -> None:
    """Deterministic YAML (sorted keys), written via a temp file + fsync + rename: never half-written."""
    doc = {"schema": LOCK_SCHEMA, "steps": {name: entries[name].as_yaml() for name in sorted(entries)}}
    text = yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, allow_unicode=True, width=200)
    write_atomic(path, _HEADER + text)


def load_params(root: Path, params_file: str | None, steps: Mapping[str, Step]) -> dict[str, Any]:
    """The values of every declared param, by dotted key; a missing file or key is a UsageError."""
    wanted = {key: name for name, step in steps.items() for key in step.params}
    if not wanted:
        return {}
    if params_file is None:
        step = next(iter(wanted.values()))
        raise UsageError(f"step '{step}' declares params but ml.yaml names no params file; "
                         "add 'params: params.yaml' at the top level.")
    path = root / params_file
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{params_file}: the params file does not exist; create it or fix 'params:' "
                         "in ml.yaml.") from None
    except (OSError, ValueError) as exc:  # a directory, no permission, a name too long; not UTF-8
        raise UsageError(f"{params_file}: cannot read the params file ({exc}).") from None
    try:  # with ml.yaml's limits on nesting and aliases, so `validate` and `run` read the file alike
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        line, col, what = explain(exc, text)
        raise UsageError(f"{params_file}:{line}:{col}: {what}.") from None
    return {key: _lookup(doc, key, params_file, name) for key, name in wanted.items()}


def _lookup(doc: Any, key: str, params_file: str, step: str) -> Any:
    node = doc
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UsageError(f"{params_file}: has no param '{key}' (declared by step '{step}'); "
                             "add it to the file or remove it from the step's params.")
        node = node[part]
    return node
