"""`mlops-bot gate`: for release pipelines. Open (exit 0) only when the version about to ship is the
champion - or, with --version, passed its recorded decision - was not rolled back, carries every
required tag and still has its model (its source, listed in its run's artifacts); closed (exit 1) otherwise,
saying why."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ..config.model import Config
from ..console import emit_json, log
from ..errors import EXIT_NEGATIVE, EXIT_OK, NotFound, UsageError
from ..lifecycle.protected import hand_moved
from ..registry import alias_holder, tags
from ..registry.base import ModelVersion, Registry
from ..support.urls import redact
from .project import Project


@dataclass(frozen=True)
class GateResult:
    model: str
    alias: str
    version: str | None
    is_open: bool
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {"model": self.model, "alias": self.alias, "version": self.version, "open": self.is_open,
                "reasons": list(self.reasons)}


def configure(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--alias", help="gate the version behind this alias (default: promote.alias of ml.yaml)")
    which.add_argument("--version", help="gate this model version: open if it is the champion or passed its "
                                         "recorded decision")
    parser.add_argument("--require-tag", action="append", default=[], metavar="K=V",
                        help="the version must carry tag K with value V (repeatable)")


def parse_required(pairs: Sequence[str]) -> dict[str, str]:
    required = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--require-tag {pair!r}: write it as KEY=VALUE.")
        required[key] = value
    return required


def judge_gate(model: str, alias: str, version: ModelVersion | None, holder: str | None, by_version: bool,
               required: Mapping[str, str]) -> GateResult:
    """Pure: why the gate is open or closed for `version`, given who holds `alias` now."""
    if version is None:
        return GateResult(model, alias, None, False, (f"no version of {model} holds the alias '{alias}'",))
    reasons = []
    is_champion = holder == version.version
    verdict = version.tags.get(tags.VERDICT)
    if by_version and not is_champion and verdict != "pass":
        recorded = f"its recorded verdict is '{verdict}'" if verdict else "it has no recorded decision"
        reasons.append(f"v{version.version} is not the {alias} (v{holder or 'none'}) and {recorded}")
    if version.tags.get(tags.ROLLED_BACK):
        reasons.append(f"v{version.version} was rolled back: {version.tags[tags.ROLLED_BACK]}")
    for key, want in required.items():
        have = version.tags.get(key)
        if have != want:
            shown = "missing" if have is None else f"'{have}'"
            reasons.append(f"tag {key} must be '{want}' but is {shown}")
    if not reasons:
        why = f"v{version.version} is the {alias}" if is_champion else f"v{version.version} passed its decision"
        return GateResult(model, alias, version.version, True, (why,))
    return GateResult(model, alias, version.version, False, tuple(reasons))


def check_gate(config: Config, registry: Registry, alias: str | None = None, version: str | None = None,
               required: Mapping[str, str] | None = None) -> GateResult:
    alias = alias or config.promote.alias
    holder = alias_holder(registry, config.model.name, alias)
    target = holder
    if version:
        try:
            target = registry.get_model_version(config.model.name, str(version))
        except NotFound:
            raise UsageError(f"--version {version}: {config.model.name} has no such version.") from None
    result = judge_gate(config.model.name, alias, target, holder.version if holder else None, bool(version),
                        required or {})
    problems = [source_problem(registry, target)] if target is not None else []
    # A protected alias moved by hand does not ship: the gated alias, or with --version the aliases it holds.
    gated = target.aliases if version and target is not None else (alias,)
    problems += [found.detail for found in hand_moved(config, registry, gated)]
    found = tuple(p for p in problems if p)
    if not found:
        return result
    reasons = found if result.is_open else (*result.reasons, *found)
    return replace(result, is_open=False, reasons=reasons)


def source_problem(registry: Registry, version: ModelVersion) -> str | None:
    """Why the model of `version` cannot ship: its source is not a listable artifact of its run, or lists no
    file. None when files are there. A server that cannot answer raises (the gate stays closed)."""
    where = f"the source {redact(version.source)} of v{version.version}"
    if not version.run_id:
        return f"{where} names no run, so it cannot be listed"
    try:
        run = registry.get_run(version.run_id)
    except NotFound:
        return f"{where} cannot be listed: its run {version.run_id} is gone"
    model_id = _logged_model_id(version.source)
    path = _artifact_path(version.source, run.run_id, run.artifact_uri)
    if path is None and model_id is None:
        return f"{where} is not in the artifacts of its run {run.run_id}, so it cannot be listed"
    try:
        files = (registry.list_logged_model_artifacts(model_id) if model_id is not None
                 else registry.list_artifacts(run.run_id, path or ""))
    except (NotFound, UsageError) as exc:
        return f"{where} cannot be listed: {exc}"
    return None if files else f"{where} is missing or empty in run {run.run_id}"


def _logged_model_id(source: str) -> str | None:
    """The model_id of an MLflow 3 Logged Model source: `models:/<model_id>`, as MLflow parses it (one part, no
    alias; `models:/<name>/<version>` names a version instead)."""
    rest = source[len("models:/"):] if source.startswith("models:/") else ""
    return rest if rest and "/" not in rest and "@" not in rest else None


def _artifact_path(source: str, run_id: str, artifact_uri: str) -> str | None:
    """The path of `source` inside the run's artifacts; None when it points elsewhere."""
    for base in (artifact_uri.rstrip("/"), f"runs:/{run_id}"):
        if source.rstrip("/") == base:
            return ""
        if source.startswith(base + "/"):
            return source[len(base) + 1:]
    return None


def main(args: argparse.Namespace, project: Project) -> int:
    required = parse_required(args.require_tag)
    result = check_gate(project.config, project.registry, args.alias, args.version, required)
    if args.json:
        emit_json(result.as_json())
    log(describe_gate(result))
    return EXIT_OK if result.is_open else EXIT_NEGATIVE


def describe_gate(result: GateResult) -> str:
    state = "open" if result.is_open else "closed"
    which = f" v{result.version}" if result.version else ""
    return f"gate {state} for {result.model}{which}: " + "; ".join(result.reasons)
