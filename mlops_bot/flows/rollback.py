"""`mlops-bot rollback`: put the previous champion back, redeploy it, and record why.

The replaced version keeps the `previous` alias (so a mistaken rollback can be undone with `--to`) and
a rolled-back tag with the reason, which closes the release gate for it."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from ..config.model import Config
from ..console import emit_json, log
from ..deploy import DeployResult, deploy_all, raise_for_failures
from ..errors import EXIT_OK, NotFound, UsageError
from ..events.bus import emit
from ..events.event import model_subject
from ..registry import alias_holder, tags
from ..registry.base import ModelVersion, Registry
from ..registry.lock import registry_lock
from .project import Project


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", metavar="VERSION", help="the version to restore (default: the previous champion)")
    parser.add_argument("--reason", default="", help="why; recorded on the version taken out of service")
    parser.add_argument("--no-deploy", action="store_true", help="move the alias but run no deploy target")


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


def rollback(config: Config, registry: Registry, wanted: str | None, reason: str) -> tuple[ModelVersion, str | None]:
    """Moves the alias back under the lock; returns (restored version, replaced version or None)."""
    name, alias = config.model.name, config.promote.alias
    with registry_lock(registry, name):
        current = alias_holder(registry, name, alias)
        target = _target(config, registry, wanted)
        if current is not None and current.version == target.version:
            return target, None
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        why = f"{reason or 'rolled back'} ({stamp}, back to v{target.version})"
        if current is not None:
            registry.set_model_version_tag(name, current.version, tags.ROLLED_BACK, why)
        if target.tags.get(tags.ROLLED_BACK):  # restoring a version by hand puts it back in service
            registry.set_model_version_tag(name, target.version, tags.ROLLED_BACK, "")
        registry.set_alias(name, alias, target.version)
        emit(config, "alias.moved", model_subject(name, target.version), {
            "model": name, "alias": alias, "version": target.version,
            "previous_version": current.version if current else None, "reason": f"rollback: {why}"})
        if current is not None:
            registry.set_alias(name, config.promote.previous_alias, current.version)
            emit(config, "alias.moved", model_subject(name, current.version), {
                "model": name, "alias": config.promote.previous_alias, "version": current.version,
                "reason": f"rollback: {why}"})
    return target, current.version if current else None


def main(args: argparse.Namespace, project: Project) -> int:
    config, registry = project.config, project.registry
    results: list[DeployResult] = []
    target, replaced = rollback(config, registry, args.to, args.reason)
    if replaced is None:
        log(f"v{target.version} is already the {config.promote.alias}; nothing to roll back")
    else:
        log(f"rolled back {config.model.name}: v{target.version} is the {config.promote.alias} again "
            f"(v{replaced} taken out of service)")
    if config.deploy and not args.no_deploy:
        results = deploy_all(config, registry, target.version)
        raise_for_failures(results)
    if args.json:
        emit_json({"model": config.model.name, "version": target.version, "replaced": replaced,
                   "deployments": [r.as_json() for r in results]})
    return EXIT_OK
