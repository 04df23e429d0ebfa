"""`mlops-bot rollback`: put the previous champion back, redeploy it, and record why.

The replaced version keeps the `previous` alias (so a mistaken rollback can be undone with `--to`) and
a rolled-back tag with the reason, which closes the release gate for it. With promote.stages, `--stage S` rolls
back that stage (default: the entry stage) and redeploys S's targets only. Each move is recorded for `history`;
`--to` the version that holds the alias already records it as the bot's (adopting a protected alias moved by
hand, once someone checked it)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from datetime import datetime, timezone

from ..ci.context import read_context
from ..config.model import Config, Stage
from ..console import emit_json, log
from ..deploy import DeployOptions, DeployResult, deploy_all, raise_for_failures
from ..deploy.deployment import stop_rollouts
from ..errors import EXIT_OK, NotFound, UsageError
from ..events.bus import emit
from ..events.event import model_subject
from ..lifecycle.approvals import read_approval
from ..lifecycle.history import Move, Mover, latest_move, mover_of, now_ms, read_moves, write_move
from ..lifecycle.stages import entry_stage, stage_config, stage_named, stage_targets
from ..registry import alias_holder, tags
from ..registry.base import ModelVersion, Registry
from ..registry.lock import registry_lock
from .project import Project


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", metavar="VERSION", help="the version to restore (default: the previous champion)")
    parser.add_argument("--reason", default="", help="why; recorded on the version taken out of service")
    parser.add_argument("--no-deploy", action="store_true", help="move the alias but run no deploy target")
    parser.add_argument("--stage", metavar="ALIAS", help="the stage of promote.stages to roll back (default: the "
                                                          "entry stage)")


def _target(config: Config, registry: Registry, wanted: str | None) -> ModelVersion:
    name = config.model.name
    if wanted:
        try:
            return registry.get_model_version(name, wanted)
        except NotFound:
            raise UsageError(f"--to {wanted}: {name} has no such version.") from None
    previous = alias_holder(registry, name, config.promote.previous_alias)
    if previous is None:
        raise UsageError(f"{name} has no '{config.promote.previous_alias}' version to roll back to; "
                         "name one with --to VERSION.")
    if previous.tags.get(tags.ROLLED_BACK):
        raise UsageError(f"the previous champion v{previous.version} was itself rolled back "
                         f"({previous.tags[tags.ROLLED_BACK]}); name the version to restore with --to VERSION.")
    return previous


def rollback(config: Config, registry: Registry, wanted: str | None, reason: str,
             mover: Mover | None = None) -> tuple[ModelVersion, str | None]:
    """Moves the alias back under the lock; returns (restored version, replaced version or None)."""
    name, alias = config.model.name, config.promote.alias
    mover = mover or Mover("", "")
    with registry_lock(registry, name):
        current = alias_holder(registry, name, alias)
        target = _target(config, registry, wanted)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        why = f"{reason or 'rolled back'} ({stamp}, back to v{target.version})"
        record = Move(alias=alias, version=target.version, previous=current.version if current else None,
                      stamp=now_ms(), by=mover.by, reason=f"rollback: {why}", where=mover.where,
                      verdict=target.tags.get(tags.VERDICT, ""), decision=target.tags.get(tags.DECISION_SUMMARY, ""),
                      approval=_approval(target, alias))
        if current is not None and current.version == target.version:
            if wanted and _unrecorded(registry, name, alias, target.version):
                write_move(registry, name, record)  # --to the holder: the bot's record of it from now on
            return target, None
        if current is not None:
            registry.set_model_version_tag(name, current.version, tags.ROLLED_BACK, why)
        if target.tags.get(tags.ROLLED_BACK):  # restoring a version by hand puts it back in service
            registry.set_model_version_tag(name, target.version, tags.ROLLED_BACK, "")
        registry.set_model_version_tag(name, target.version, tags.stage_reached(alias), stamp)
        write_move(registry, name, record)  # before the move, as promotion does
        registry.set_alias(name, alias, target.version)
        emit(config, "alias.moved", model_subject(name, target.version), {
            "model": name, "alias": alias, "version": target.version,
            "previous_version": current.version if current else None, "reason": f"rollback: {why}",
            "by": mover.by or None, "where": mover.where or None})
        if current is not None:
            write_move(registry, name, Move(alias=config.promote.previous_alias, version=current.version,
                                            previous=None, stamp=record.stamp, by=mover.by, reason=record.reason,
                                            where=mover.where))
            registry.set_alias(name, config.promote.previous_alias, current.version)
            emit(config, "alias.moved", model_subject(name, current.version), {
                "model": name, "alias": config.promote.previous_alias, "version": current.version,
                "reason": f"rollback: {why}"})
    return target, current.version if current else None


def _unrecorded(registry: Registry, model: str, alias: str, version: str) -> bool:
    latest = latest_move(read_moves(registry, model), alias)
    return latest is None or latest.version != version


def _approval(version: ModelVersion, alias: str) -> dict[str, str] | None:
    approval = read_approval(version, alias)
    return asdict(approval) if approval is not None else None


def _staged(config: Config, stage: Stage) -> Config:
    return stage_config(config, stage) if config.promote.stages else config


def stop_rollouts_of(config: Config, registry: Registry, replaced: str | None, reason: str) -> None:
    """A rollout of the version taken out of service rolls back too; else a later tick would finish it."""
    if replaced is not None and any(t.rollout is not None for t in config.deploy):
        stop_rollouts(config, registry, replaced, f"rolled back by hand: {reason or 'no reason given'}")


def deploy_restored(config: Config, registry: Registry, stage: Stage, version: str) -> list[DeployResult]:
    """Redeploys the restored version to the stage's targets; raises DeployFailed after recording on a failure."""
    names = stage_targets(config, stage)
    results = deploy_all(config, registry, version, DeployOptions(targets=names)) if names else []
    raise_for_failures(results)
    return results


def rollback_stage(project: Project, stage: str, mover: Mover, reason: str) -> tuple[ModelVersion, str | None]:
    """Rolls `stage` back to its previous version and redeploys the stage's targets: (restored, replaced or None)."""
    config, registry = project.config, project.registry
    chosen = stage_named(config, stage)
    target, replaced = rollback(_staged(config, chosen), registry, None, reason, mover)
    stop_rollouts_of(config, registry, replaced, reason)
    deploy_restored(config, registry, chosen, target.version)  # what is deployed already is skipped
    return target, replaced


def main(args: argparse.Namespace, project: Project) -> int:
    config, registry = project.config, project.registry
    stage = stage_named(config, args.stage) if args.stage else entry_stage(config)
    context = read_context(project.env)
    results: list[DeployResult] = []
    target, replaced = rollback(_staged(config, stage), registry, args.to, args.reason, mover_of(context))
    if replaced is None:
        log(f"v{target.version} is already the {stage.alias}; nothing to roll back")
    else:
        log(f"rolled back {config.model.name}: v{target.version} is the {stage.alias} again "
            f"(v{replaced} taken out of service)")
    stop_rollouts_of(config, registry, replaced, args.reason)
    if not args.no_deploy:
        results = deploy_restored(config, registry, stage, target.version)
    if args.json:
        emit_json({"model": config.model.name, "stage": stage.alias, "version": target.version,
                   "replaced": replaced, "deployments": [r.as_json() for r in results]})
    return EXIT_OK
