"""`mlops-bot history [--alias A] [--at TIME]`: every move of the stages' aliases by the bot (when, which version,
from which, by whom, why: the decision and the approval, and the deploys that followed), or with --at the one
version that held the alias at that time. Read from the registry's move records (lifecycle/history.py) and the
workspace's audit log; `--json` prints one document."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

from ..config.model import Config
from ..console import emit_json
from ..errors import EXIT_NEGATIVE, EXIT_OK, UsageError
from ..lifecycle.history import Move, audit_deploys, deploys_of, holder_at, iso, moves_of
from ..lifecycle.stages import stage_targets
from ..registry.base import ModelVersion
from .project import Project

WHY_WIDTH = 80


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alias", metavar="A", help="only this alias (default: every stage's alias and the "
                                                     "protected ones; with --at: promote.alias)")
    parser.add_argument("--at", metavar="TIME", help="the version that held the alias at TIME, ISO 8601 "
                                                     "(2026-12-06T10:00:00Z; without a zone: UTC)")


def parse_time(text: str) -> int:
    """ms since the epoch of an ISO 8601 time (a date alone is its midnight, UTC)."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--at {text!r}: not an ISO 8601 time; write it like 2026-12-06T10:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)


def collect(config: Config, versions: list[ModelVersion], alias: str | None) -> list[dict[str, Any]]:
    """The moves of `alias` (default: the stages' and protected aliases), oldest first, each with its deploys."""
    wanted = {alias} if alias else {*(s.alias for s in config.promote.all_stages), *config.promote.protected}
    everything = moves_of(versions)
    moves = [m for m in everything if m.alias in wanted]
    logged = audit_deploys(config.root, config.model.name)
    by_number = {v.version: v for v in versions}
    return [{**m.as_json(), "deploys": _deploys(config, m, _next(everything, m), by_number.get(m.version), logged)}
            for m in moves]


def _next(moves: list[Move], move: Move) -> Move | None:
    return next((m for m in moves if m.alias == move.alias and m.stamp > move.stamp), None)


def _deploys(config: Config, move: Move, after: Move | None, version: ModelVersion | None,
             logged: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The deploys of the moved version while it held the alias (to the stage's targets, for a stage)."""
    if version is None:
        return []
    stage = config.promote.stage(move.alias)
    targets = set(stage_targets(config, stage)) if stage is not None else None
    end = after.at if after is not None else "~"  # "~" sorts after every ISO time
    return [d for d in deploys_of(version, logged)
            if move.at <= d["at"] < end and (targets is None or d["target"] in targets)]


def holder_document(config: Config, versions: list[ModelVersion], alias: str, stamp: int) -> dict[str, Any]:
    move = holder_at(moves_of(versions), alias, stamp)
    doc: dict[str, Any] = {"model": config.model.name, "alias": alias, "at": iso(stamp)}
    if move is None:
        return {**doc, "version": None, "move": None,
                "detail": f"no version held {alias} at {iso(stamp)} (by mlops-bot's records)"}
    moves = collect(config, versions, alias)
    found = next(m for m in moves if m["at"] == move.at and m["version"] == move.version)
    return {**doc, "version": move.version, "move": found, "detail": f"v{move.version} held {alias} at {iso(stamp)}"}


def why(move: dict[str, Any]) -> str:
    reason = move["reason"] if move["reason"] != "promote" else \
        (f"{move['verdict']}: {move['decision']}" if move["verdict"] else "promote")
    reason = reason if len(reason) <= WHY_WIDTH else reason[: WHY_WIDTH - 3] + "..."
    approval = move.get("approval")
    if approval:  # after the cut: who approved always shows
        reason += f"; approved by {approval.get('by', '?')} via {approval.get('via', '?')}"
    return reason


def deploy_text(move: dict[str, Any]) -> str:
    return ", ".join(f"{d['target']}={d['status']}" for d in move["deploys"]) or "-"


def render_table(model: str, moves: list[dict[str, Any]]) -> str:
    if not moves:
        return f"{model}: no alias moves recorded yet (`mlops-bot promote` records each one)"
    header = ("time", "alias", "version", "previous", "by", "why", "deploys")
    rows = [header] + [(m["at"], m["alias"], f"v{m['version']}", f"v{m['previous']}" if m["previous"] else "-",
                        m["by"] or "-", why(m), deploy_text(m)) for m in moves]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def render_holder(doc: dict[str, Any]) -> str:
    move = doc["move"]
    if move is None:
        return str(doc["detail"])
    where = f" from {move['where']}" if move["where"] else ""
    return (f"{doc['alias']} at {doc['at']}: v{doc['version']}, moved there {move['at']} by {move['by'] or '-'}"
            f"{where}\nwhy: {why(move)}\ndeploys: {deploy_text(move)}")


def main(args: argparse.Namespace, project: Project) -> int:
    from ..errors import NotFound

    config, registry = project.config, project.registry
    stamp = parse_time(args.at) if args.at is not None else None
    try:
        versions = registry.search_model_versions(config.model.name)
    except NotFound:
        versions = []
    if stamp is not None:
        doc = holder_document(config, versions, args.alias or config.promote.alias, stamp)
        if args.json:
            emit_json(doc)
        else:
            print(render_holder(doc))
        return EXIT_OK if doc["version"] is not None else EXIT_NEGATIVE
    moves = collect(config, versions, args.alias)
    if args.json:
        emit_json({"model": config.model.name, "alias": args.alias, "moves": moves})
    else:
        print(render_table(config.model.name, moves))
    return EXIT_OK
