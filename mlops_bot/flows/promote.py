"""`mlops-bot promote`: register the challenger with its lineage, move the champion alias when the
decision passes, and deploy the new champion. Idempotent: a re-run for the same run registers nothing
new, changes nothing and only retries deployments that did not succeed.

With promote.stages, a plain `promote` moves the entry stage; `promote --stage S [--version N]` moves S once the
version reached the stage S requires, holds the approval S needs and passes S's criteria against S's holder, and
deploys S's targets only. Every move is recorded for `history` (lifecycle/history.py)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..ci.context import CIContext, read_context
from ..config.model import Config, Stage
from ..console import annotation, emit_json, log
from ..decide.decision import Decision
from ..deploy import DeployOptions, DeployResult, deploy_all, raise_for_failures
from ..errors import EXIT_NEGATIVE, EXIT_OK, NotFound, UsageError
from ..lifecycle.approvals import Approval, record_approval
from ..lifecycle.history import Mover, mover_of
from ..lifecycle.promotion import Promotion, promote, register
from ..lifecycle.stages import (
    StageRefused,
    check_approval,
    check_requires,
    entry_stage,
    stage_config,
    stage_named,
    stage_targets,
)
from ..registry import alias_holder, tags
from ..registry.base import ModelVersion, Registry
from .project import Project

AskApproval = Callable[[ModelVersion, Stage], "Approval | None"]  # the forge's approvals (flows/approvers)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", metavar="ID", help="the challenger's tracking run (default: the last `run`)")
    parser.add_argument("--decision", metavar="FILE", help="a Decision from `compare --json` (default: compare now)")
    parser.add_argument("--no-deploy", action="store_true", help="move the alias but run no deploy target")
    parser.add_argument("--stage", metavar="ALIAS", help="the stage of promote.stages to move (default: the first, "
                                                          "which a merge moves)")
    parser.add_argument("--version", metavar="N", help="a registered version to promote to --stage, or to copy "
                                                        "with --to-registry (default: the challenger's)")
    parser.add_argument("--to-registry", metavar="URI", help="copy the version with its artifacts, lineage and "
                                                              "decision to this tracking server's registry")


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


def config_for(config: Config, stage: Stage) -> Config:
    """The config a stage's promotion works under; without stages, ml.yaml's own (as before stages existed)."""
    return stage_config(config, stage) if config.promote.stages else config


def promote_run(config: Config, registry: Registry, decision: Decision, context: CIContext,
                run_given: bool, ask: AskApproval | None = None) -> Promotion:
    """Registers the decision's run and moves the entry stage's alias when it passes (and the stage's approval, if
    it needs one, is on record or `ask` finds it). The Promotion carries the decision that counted: judged again
    when the champion moved under the lock."""
    from .compare import compare_registry

    stage = entry_stage(config)
    staged = config_for(config, stage)
    champion = alias_holder(registry, staged.model.name, staged.promote.alias) \
        if decision.champion is not None else None
    if champion is not None and champion.run_id == decision.challenger.run_id:
        # The run is the champion already (a re-run): judging it against itself would only record a "fail".
        promotion = Promotion(champion, decision, "already_champion", None,
                              f"v{champion.version} (this run) is already the {staged.promote.alias}")
    else:
        version = register(staged, registry, decision, context_tags(context))
        run_id = decision.challenger.run_id if run_given else None
        if decision.passed:
            version = approved(staged, registry, (version, stage), ask)
        if not decision.passed and stage.approval is not None:
            # Refused by its verdict; not judged again under the lock, where a pass would skip the approval.
            promotion = Promotion(version, decision, "not_promoted", None, f"not promoted: {decision.summary}")
        else:
            promotion = promote(staged, registry, version, decision,
                                lambda: compare_registry(staged, registry, run_id), mover_of(context))
    log(promotion.reason)
    return promotion


def approved(config: Config, registry: Registry, pair: tuple[ModelVersion, Stage], ask: AskApproval | None) -> \
        ModelVersion:
    """The version (re-read when an approval was recorded now) once the stage's approval holds. With `ask` (the
    forge's approvals, flows/approvers.forge_approval) the forge decides: the approval on record once it confirms it
    (StageRefused naming what it did not confirm), else one it holds now, recorded. Where `ask` reaches no forge (a
    terminal outside CI) the record decides as it is. StageRefused when there is none."""
    version, stage = pair
    if stage.approval is None:
        return version
    found = ask(version, stage) if ask is not None else None
    if found is None:
        check_approval(version, stage)
        return version
    _, new = record_approval(config, registry, version, stage.alias, found)
    if new:
        version = registry.get_model_version(config.model.name, version.version)
    check_approval(version, stage)
    return version


def promote_version(project: Project, version: str | None, stage: str, mover: Mover,
                    deploy: bool = True) -> tuple[Promotion, list[DeployResult]]:
    """Moves `stage` to `version` (None: the challenger of a fresh comparison, the last `run`) through the policy:
    the stage it requires, its approval (asked of the forge when none is on record), its criteria against its
    holder; then deploys the stage's targets. StageRefused (nothing moved) when the policy refuses; a not_promoted
    Promotion when the criteria fail; DeployFailed after recording when a target failed."""
    from .approvers import forge_approval
    from .compare import compare_registry

    config, registry = project.config, project.registry
    chosen = stage_named(config, stage)
    staged = config_for(config, chosen)
    decision: Decision | None = None
    if version is None:
        decision = compare_registry(staged, registry, None)
        target = _challenger(project, staged, decision, chosen)
    else:
        target = _registered(config, registry, version)
    check_requires(config, registry, target, chosen)
    target = approved(staged, registry, (target, chosen), lambda v, s: forge_approval(project, v, s))
    if not target.run_id:
        raise UsageError(f"v{target.version} of {config.model.name} names no run, so it cannot be judged against "
                         f"the {chosen.alias}; promote a version registered from a tracking run.")
    decision = decision or compare_registry(staged, registry, target.run_id)
    promotion = promote(staged, registry, target, decision, lambda: compare_registry(staged, registry, target.run_id),
                        mover)
    log(promotion.reason)
    results = deploy_stage(config, registry, promotion, chosen) if deploy else []
    raise_for_failures(results)
    return promotion, results


def _registered(config: Config, registry: Registry, version: str) -> ModelVersion:
    number = str(version).strip().removeprefix("v")
    try:
        return registry.get_model_version(config.model.name, number)
    except NotFound:
        raise UsageError(f"--version {version}: {config.model.name} has no such version.") from None


def _challenger(project: Project, staged: Config, decision: Decision, stage: Stage) -> ModelVersion:
    """The version of the decision's run: registered now for the entry stage; for a later stage it must be
    registered already (it reached the stage before), else StageRefused."""
    registry, run_id = project.registry, decision.challenger.run_id or ""
    if stage.requires is None:
        return register(staged, registry, decision, context_tags(read_context(project.env)))
    found = next((v for v in registry.search_model_versions(staged.model.name) if v.run_id == run_id), None)
    if found is None:
        raise StageRefused(f"run {run_id} cannot reach {stage.alias}: it has not reached {stage.requires} (promote "
                           f"it there first: mlops-bot promote --stage {stage.requires} --run {run_id})")
    return found


def deploy_champion(config: Config, registry: Registry, promotion: Promotion) -> list[DeployResult]:
    """Deploys the promoted version to the entry stage's targets (every target without stages; what is up to date
    is skipped); failures are results."""
    return deploy_stage(config, registry, promotion, entry_stage(config))


def deploy_stage(config: Config, registry: Registry, promotion: Promotion, stage: Stage) -> list[DeployResult]:
    names = stage_targets(config, stage)
    if not (promotion.is_champion and names):
        return []
    from .rollout import alias_back

    hook = alias_back(config, registry, os.environ)
    return deploy_all(config, registry, promotion.version.version, DeployOptions(targets=names, on_abort=hook))


def as_json(promotion: Promotion, results: list[DeployResult], stage: str) -> dict[str, Any]:
    return {"model": promotion.version.name, "version": promotion.version.version, "stage": stage,
            "verdict": promotion.decision.verdict, "promoted": promotion.promoted,
            "already_champion": promotion.already, "replaced": promotion.replaced, "reason": promotion.reason,
            "refused": None if promotion.is_champion else promotion.reason,
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
    if args.to_registry:
        from .promote_copy import copy_main

        return copy_main(args, project)
    config = project.config
    stage = stage_named(config, args.stage) if args.stage else entry_stage(config)
    try:
        if args.version is None and stage.requires is None:  # the entry stage: the challenger of --run/--decision
            promotion, results = _promote_challenger(project, args)
        else:
            if args.run or args.decision:
                raise UsageError(f"--run and --decision choose the challenger a merge promotes to the entry stage; "
                                 f"for --stage {stage.alias} name the version: --version N.")
            promotion, results = promote_version(project, args.version, stage.alias,
                                                 mover_of(read_context(project.env)), deploy=not args.no_deploy)
    except StageRefused as exc:
        log(f"mlops-bot: refused: {exc}")
        annotation("error", f"mlops-bot promote refused: {exc}")
        if args.json:
            emit_json({"model": config.model.name, "version": args.version, "stage": stage.alias,
                       "promoted": False, "already_champion": False, "refused": str(exc), "deployments": []})
        return EXIT_NEGATIVE
    if args.json:
        emit_json(as_json(promotion, results, stage.alias))
    return EXIT_OK if promotion.is_champion else EXIT_NEGATIVE


def _promote_challenger(project: Project, args: argparse.Namespace) -> tuple[Promotion, list[DeployResult]]:
    """Today's promote, on the entry stage: compare (or read --decision), register, move, deploy."""
    from .approvers import forge_approval

    config, registry = project.config, project.registry
    decision = decision_for(config_for(config, entry_stage(config)), registry, args)
    promotion = promote_run(config, registry, decision, read_context(project.env), bool(args.run or args.decision),
                            lambda v, s: forge_approval(project, v, s))
    results = deploy_champion(config, registry, promotion) if not args.no_deploy else []
    raise_for_failures(results)
    return promotion, results
