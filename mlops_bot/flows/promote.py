"""`mlops-bot promote`: register the challenger with its lineage, move the champion alias when the
decision passes, and deploy the new champion. Idempotent: a re-run for the same run registers nothing
new, changes nothing and only retries deployments that did not succeed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..ci.context import CIContext, read_context
from ..config.model import Config
from ..console import emit_json, log
from ..decide.decision import Decision
from ..deploy import DeployResult, deploy_all, raise_for_failures
from ..errors import EXIT_NEGATIVE, EXIT_OK, UsageError
from ..lifecycle.promotion import Promotion, promote, register
from ..registry import alias_holder, tags
from ..registry.base import Registry
from .project import Project


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", metavar="ID", help="the challenger's tracking run (default: the last `run`)")
    parser.add_argument("--decision", metavar="FILE", help="a Decision from `compare --json` (default: compare now)")
    parser.add_argument("--no-deploy", action="store_true", help="move the alias but run no deploy target")


def context_tags(context: CIContext) -> dict[str, str]:
    """Lineage that only the CI run knows."""
    # The CI run's page holds the job summary with the full report: the link to the decision.
    found = {tags.REPOSITORY: context.repository, tags.RUN_URL: context.run_url, tags.DECISION_URL: context.run_url,
             tags.PULL_REQUEST: str(context.pr_number) if context.pr_number else ""}
    return {k: v for k, v in found.items() if v}


def promote_flow(config: Config, registry: Registry, decision: Decision, context: CIContext, run_given: bool,
                 deploy: bool = True) -> tuple[Promotion, list[DeployResult]]:
    """Register, promote, deploy; raises DeployFailed (exit 3) after recording when a target failed."""
    promotion = promote_run(config, registry, decision, context, run_given)
    results = deploy_champion(config, registry, promotion) if deploy else []
    raise_for_failures(results)
    return promotion, results


def promote_run(config: Config, registry: Registry, decision: Decision, context: CIContext,
                run_given: bool) -> Promotion:
    """Registers the decision's run and moves the alias when it passes. The Promotion carries the decision
    that counted: judged again when the champion moved under the lock."""
    from .compare import compare_registry

    champion = alias_holder(registry, config.model.name, config.promote.alias) \
        if decision.champion is not None else None
    if champion is not None and champion.run_id == decision.challenger.run_id:
        # The run is the champion already (a re-run): judging it against itself would only record a "fail".
        promotion = Promotion(champion, decision, "already_champion", None,
                              f"v{champion.version} (this run) is already the {config.promote.alias}")
    else:
        version = register(config, registry, decision, context_tags(context))
        run_id = decision.challenger.run_id if run_given else None
        promotion = promote(config, registry, version, decision, lambda: compare_registry(config, registry, run_id))
    log(promotion.reason)
    return promotion


def deploy_champion(config: Config, registry: Registry, promotion: Promotion) -> list[DeployResult]:
    """Deploys the promoted version to every target (what is up to date is skipped); failures are results."""
    if not (promotion.is_champion and config.deploy):
        return []
    return deploy_all(config, registry, promotion.version.version)


def as_json(promotion: Promotion, results: list[DeployResult]) -> dict[str, Any]:
    return {"model": promotion.version.name, "version": promotion.version.version,
            "verdict": promotion.decision.verdict, "promoted": promotion.promoted,
            "already_champion": promotion.already, "replaced": promotion.replaced, "reason": promotion.reason,
            "deployments": [r.as_json() for r in results]}


def decision_for(config: Config, registry: Registry, args: argparse.Namespace) -> Decision:
    if args.decision:
        from .report import load_decision

        decision = load_decision(Path(args.directory) / args.decision)
        if decision.model != config.model.name:
            raise UsageError(f"{args.decision} judges model {decision.model!r}, but ml.yaml declares "
                             f"{config.model.name!r}.")
        if not decision.challenger.run_id:
            raise UsageError(f"{args.decision} was made from metrics files and has no run to register; "
                             "compare a tracking run instead.")
        return decision
    from .compare import compare_registry

    return compare_registry(config, registry, args.run)


def main(args: argparse.Namespace, project: Project) -> int:
    config, registry = project.config, project.registry
    decision = decision_for(config, registry, args)
    promotion, results = promote_flow(config, registry, decision, read_context(project.env),
                                      bool(args.run or args.decision), deploy=not args.no_deploy)
    if args.json:
        emit_json(as_json(promotion, results))
    return EXIT_OK if promotion.is_champion else EXIT_NEGATIVE
