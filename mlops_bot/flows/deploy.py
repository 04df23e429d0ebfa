"""`mlops-bot deploy`: deploy the champion (or a given version) to the targets of ml.yaml.

Targets run in ml.yaml order; each result is recorded on the model version, so a second run retries what
failed and skips what is deployed already. Exit 0 when every target succeeded (or was up to date), 3 when
any failed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..config.model import Config
from ..console import emit_json, log
from ..deploy import DeployOptions, DeployResult, deploy_all, raise_for_failures
from ..errors import UsageError
from ..lifecycle.stages import entry_stage, stage_named, stage_targets
from ..registry import alias_holder
from ..registry.base import Registry
from .project import Project
from .rollout import alias_back


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", action="append", metavar="NAME",
                        help="deploy only to this target (repeatable; default: every target in ml.yaml)")
    parser.add_argument("--version", metavar="N", help="the model version to deploy (default: the one holding "
                        "the promote alias, e.g. champion)")
    parser.add_argument("--stage", metavar="ALIAS", help="deploy the holder of this stage of promote.stages to the "
                                                          "stage's targets (default: the entry stage)")
    parser.add_argument("--force", action="store_true", help="deploy again to targets that are up to date")
    parser.add_argument("--no-wait", dest="wait", action="store_false", default=None,
                        help="start a rollout (deploy[].rollout) and return while its first step holds; "
                             "`mlops-bot rollout` continues it")
    parser.add_argument("--wait", dest="wait", action="store_true", help="drive a rollout to its end even when "
                                                                          "ml.yaml says hand_off")
    parser.add_argument("--stop", action="store_true", help="stop what the mlflow_serve targets serve (their model "
                        "servers and nginx fronts); with --target, only those")
    parser.epilog = "Exit 0 when every target succeeded or was up to date, 3 when any failed (re-run to retry)."




def _table(results: list[DeployResult]) -> str:
    rows = [(r.target, r.type, r.status, r.url or (r.commit or "")[:12], r.detail) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(row[i].ljust(widths[i]) for i in range(4)) + "  " + row[4] for row in rows)


class _ForgeWhenNeeded:
    """The CI's forge, opened only when a gitops target asks for a pull request (only then is a token needed)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def open_pull_request(self, head: str, base: str, title: str, body: str) -> str:
        from ..ci.context import read_context
        from ..forges import open_forge

        env = dict(os.environ)
        return open_forge(read_context(env), env, root=self.root).open_pull_request(head, base, title, body)


def _holder(config: Config, registry: Registry, alias: str) -> str:
    holder = alias_holder(registry, config.model.name, alias)
    if holder is None:
        raise UsageError(f"no version of {config.model.name} holds the alias '{alias}'; "
                         "promote one first or pass --version N.")
    return holder.version


def _stop(config: Config, names: list[str] | None) -> int:
    from ..deploy.mlflow_serve import stop

    targets = [t for t in config.deploy if t.type == "mlflow_serve" and (not names or t.name in names)]
    if names and len(targets) < len(set(names)):
        raise UsageError(f"--stop stops mlflow_serve targets; {config.path.name} has none named "
                         f"{', '.join(n for n in names if n not in [t.name for t in targets])}.")
    for target in targets:
        print(f"{target.name}: {stop(config.root, target)}", flush=True)
    if not targets:
        log(f"mlops-bot: {config.path.name} has no mlflow_serve targets; nothing to stop.")
    return 0


def main(args: argparse.Namespace, project: Project) -> int:
    if args.stop:
        return _stop(project.config, args.target)
    config, registry = project.config, project.registry
    stage = stage_named(config, args.stage) if args.stage else entry_stage(config)
    version = args.version or _holder(config, registry, stage.alias)
    if not config.deploy:
        log(f"mlops-bot: {config.path.name} declares no deploy targets; nothing to deploy.")
    targets = args.target or list(stage_targets(config, stage))
    if config.deploy and not targets:  # the stage deploys nothing (its `deploy: []`), not everything
        log(f"mlops-bot: the stage {stage.alias} has no deploy targets; nothing to deploy.")
        return 0
    options = DeployOptions(targets=targets, force=args.force, forge=_ForgeWhenNeeded(config.root),
                            on_abort=alias_back(config, registry, project.env), wait=args.wait)
    results = deploy_all(config, registry, version, options)
    if args.json:
        emit_json({"model": config.model.name, "version": str(version), "results": [r.as_json() for r in results]})
    elif results:
        print(_table(results), flush=True)
    raise_for_failures(results)
    return 0
