"""`mlops-bot status`: the champion, the previous one, and the recent versions with their verdicts and
deployments, as a table (or one JSON document)."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

from ..config.model import Config, DeployTarget
from ..console import emit_json, log
from ..deploy.rollout.state import read_state
from ..lifecycle.protected import hand_moved
from ..registry import alias_holder, tags
from ..registry.base import ModelVersion, Registry
from .project import Project


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=10, help="how many recent versions to show (default 10)")


def version_row(config: Config, version: ModelVersion) -> dict[str, Any]:
    deployments = {t.name: _deployment(version, t) for t in config.deploy}
    return {
        "version": version.version,
        "aliases": list(version.aliases),
        "verdict": version.tags.get(tags.VERDICT, ""),
        "summary": version.tags.get(tags.DECISION_SUMMARY, ""),
        "run_id": version.run_id,
        "commit": version.tags.get(tags.COMMIT, "")[:12],
        "created": _when(version.creation_timestamp),
        "rolled_back": version.tags.get(tags.ROLLED_BACK, ""),
        "deployments": {k: v for k, v in deployments.items() if v},
    }


def _deployment(version: ModelVersion, target: DeployTarget) -> str:
    """The target's status on the version; for a rollout, where it stands (its status tag says `running` all along)."""
    status = version.tags.get(tags.deploy_status(target.name), "")
    state = read_state(version, target.name) if target.rollout is not None else None
    if state is not None and state.active:
        return f"rolling out ({'shadow' if state.phase == 'shadow' else f'{state.traffic}%'})"
    return "rolled back" if state is not None and state.phase == "aborted" else status


def collect(config: Config, registry: Registry, limit: int) -> dict[str, Any]:
    name = config.model.name
    champion = alias_holder(registry, name, config.promote.alias)
    previous = alias_holder(registry, name, config.promote.previous_alias)
    recent = registry.search_model_versions(name, max_results=limit) if limit > 0 else []
    stages = {s.alias: alias_holder(registry, name, s.alias) for s in config.promote.stages}
    return {
        "model": name,
        "champion": champion.version if champion else None,
        "previous": previous.version if previous else None,
        "stages": {alias: holder.version if holder else None for alias, holder in stages.items()},
        "protected": [found.as_json() for found in hand_moved(config, registry)],
        "versions": [version_row(config, v) for v in recent],
    }


def render_table(status: dict[str, Any]) -> str:
    lines = [f"{status['model']}: champion v{status['champion'] or '-'}, previous v{status['previous'] or '-'}"]
    if status["stages"]:
        lines.append("stages: " + ", ".join(f"{a} v{v or '-'}" for a, v in status["stages"].items()))
    lines += [f"warning: {found['detail']}" for found in status["protected"]]
    lines.append("")
    header = ("version", "aliases", "verdict", "commit", "created", "deployments")
    rows = [header] + [(
        f"v{v['version']}", ",".join(v["aliases"]) or "-", v["verdict"] or "-", v["commit"] or "-", v["created"],
        ", ".join(f"{k}={s}" for k, s in v["deployments"].items()) or "-",
    ) for v in status["versions"]]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if not status["versions"]:
        lines.append("(no versions registered yet; `mlops-bot promote` registers the first)")
    return "\n".join(lines)


def _when(ms: int) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def main(args: argparse.Namespace, project: Project) -> int:
    status = collect(project.config, project.registry, args.limit)
    if args.json:
        for found in status["protected"]:  # the table shows them; with --json, stderr does
            log(f"mlops-bot: warning: {found['detail']}")
        emit_json(status)
    else:
        print(render_table(status))
    return 0
