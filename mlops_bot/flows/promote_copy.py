"""`mlops-bot promote --to-registry URI [--version N | --stage ALIAS]`: copy a version of this project's model,
with its run, artifacts, lineage and decision, to another tracking server's registry (lifecycle/transfer.py).

Which version: --version N, else the holder of --stage ALIAS, else of promote.alias. The target's credentials
come from MLOPS_BOT_TARGET_TRACKING_TOKEN (or _USERNAME and _PASSWORD), never from the source's
MLFLOW_TRACKING_* (lifecycle/transfer_target.py). Idempotent: a second call reports the copy made before.
"""

from __future__ import annotations

import argparse

from ..config.model import Config
from ..console import emit_json
from ..errors import EXIT_OK, InvalidParameter, NotFound, UsageError
from ..lifecycle.transfer import Transfer, copy_version
from ..lifecycle.transfer_target import open_target
from ..registry import alias_holder
from ..registry.base import ModelVersion, Registry
from ..support.urls import redact
from .project import Project


def chosen_version(config: Config, registry: Registry, args: argparse.Namespace) -> ModelVersion:
    """The version to copy; UsageError naming what to give when there is none."""
    name = config.model.name
    where = redact(config.tracking.uri)
    if args.version:
        number = str(args.version).strip().removeprefix("v")
        try:
            return registry.get_model_version(name, number)
        except (NotFound, InvalidParameter):  # InvalidParameter: MLflow refusing the GitLab-style retry (9.0.0)
            raise UsageError(f"--version {args.version}: {name} has no version {number} in {where}; run "
                             "`mlops-bot status` to see its versions.") from None
    alias = args.stage or config.promote.alias
    holder = alias_holder(registry, name, alias)
    if holder is None:
        how = "--stage" if args.stage else "promote.alias"
        raise UsageError(f"no version of {name} holds the alias {alias!r} ({how}) in {where}: nothing to copy; "
                         "give --version N, or --stage ALIAS of a stage a version has reached.")
    return holder


def copy_main(args: argparse.Namespace, project: Project) -> int:
    given = [option for option, value in (("--run", args.run), ("--decision", args.decision)) if value]
    if given:
        raise UsageError(f"--to-registry copies a registered version: {' and '.join(given)} "
                         f"{'does' if len(given) == 1 else 'do'} not apply; choose the version with --version N "
                         "or --stage ALIAS.")
    config, registry = project.config, project.registry
    version = chosen_version(config, registry, args)
    target = open_target(args.to_registry, config.root, project.env, config.tracking.uri)
    try:
        result = copy_version(Transfer(config, registry, target, config.tracking.uri), version)
    finally:
        target.close()
    if args.json:
        emit_json(result.as_json())
    return EXIT_OK
