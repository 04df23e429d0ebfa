"""Stages of promotion: the Config one stage works under, and the policy a version meets before it reaches a
stage: the stage it requires (reached through the bot, not rolled back since) and the approval it needs.

A refusal is a StageRefused (exit 1, a policy answer like a failing verdict), raised before anything is written.
"""

from __future__ import annotations

from dataclasses import replace

from ..config.model import ApprovalRule, ChampionSelector, Config, Criterion, Significance, Stage, role_at_least
from ..errors import EXIT_NEGATIVE, BotError, UsageError
from ..registry import tags
from ..registry.base import ModelVersion, Registry
from .approvals import Approval, read_approval


class StageRefused(BotError):
    """The promotion policy refuses the move (order of stages, approval); nothing was moved."""

    exit_code = EXIT_NEGATIVE


def stage_named(config: Config, alias: str) -> Stage:
    """The stage of promote.stages (or the one implicit stage) with this alias; UsageError naming the choices."""
    stage = config.promote.stage(alias)
    if stage is None:
        from ..config.lookup import close_match

        choices = [s.alias for s in config.promote.all_stages]
        raise UsageError(f"--stage {alias}: {config.path.name} has no such stage{close_match(alias, choices)} "
                         f"(its stages: {', '.join(choices)}).")
    return stage


def entry_stage(config: Config) -> Stage:
    """The stage a merge (and a plain `promote`) moves: the one that requires none."""
    return next(s for s in config.promote.all_stages if s.requires is None)


def stage_config(config: Config, stage: Stage) -> Config:
    """`config` as it applies to one stage: the champion is the stage's holder, judged by the stage's criteria (or
    compare's), and the alias moved is the stage's. deploy stays whole: its secret names guard every command deploy;
    `stage_targets` says which of its targets run."""
    criteria = stage.criteria if stage.criteria is not None else config.compare.criteria
    compare = replace(config.compare, champion=ChampionSelector(alias=stage.alias), criteria=criteria,
                      significance=_significance(config, criteria))
    promote = replace(config.promote, alias=stage.alias, previous_alias=stage.previous_alias)
    return replace(config, compare=compare, promote=promote)


def _significance(config: Config, criteria: tuple[Criterion, ...]) -> Significance | None:
    """compare.significance, joined by the metrics of the stage's criteria marked `significant`."""
    base = config.compare.significance
    extra = tuple(c.metric for c in criteria if c.significant)
    if not extra:
        return base
    metrics = tuple(dict.fromkeys((*(base.metrics if base else ()), *extra)))
    return replace(base, metrics=metrics) if base else Significance(metrics=metrics)


def stage_targets(config: Config, stage: Stage) -> tuple[str, ...]:
    """The names of the deploy targets run when `stage` moves, in ml.yaml order."""
    return tuple(t.name for t in config.deploy if stage.deploy is None or t.name in stage.deploy)


def check_requires(config: Config, registry: Registry, version: ModelVersion, stage: Stage) -> None:
    """Refuses `version` for `stage` unless it reached the required stage through the bot and was not rolled back
    since. Reads the version's tags afresh: a promotion a moment ago counts."""
    required = stage.requires
    if required is None:
        return
    fresh = registry.get_model_version(config.model.name, version.version)
    v = fresh.version
    if not fresh.tags.get(tags.stage_reached(required)):
        raise StageRefused(f"v{v} cannot reach {stage.alias}: it has not reached {required} (promote it there "
                           f"first: mlops-bot promote --stage {required} --version {v})")
    if fresh.tags.get(tags.ROLLED_BACK):
        raise StageRefused(f"v{v} cannot reach {stage.alias}: it was rolled back ({fresh.tags[tags.ROLLED_BACK]}); "
                           f"restore it with `mlops-bot rollback --to {v}` first if that was a mistake")


def check_approval(version: ModelVersion, stage: Stage) -> Approval | None:
    """The approval on record that lets `version` reach `stage` (None when the stage needs none); StageRefused when
    there is none, or the one on record no longer meets the stage's rule (permission, mechanism)."""
    rule = stage.approval
    if rule is None:
        return None
    approval = read_approval(version, stage.alias)
    if approval is not None and role_at_least(approval.role, rule.permission) and approval.via in rule.via:
        return approval
    v = version.version
    ways = _ways(rule, stage.alias, v)
    why = ""
    if approval is not None:
        why = (f"; the approval on record (by {approval.by}, {approval.role}, via {approval.via}) does not meet the "
               "stage's rule")
    raise StageRefused(f"v{v} needs approval for {stage.alias} (from someone with {rule.permission} or above: "
                       f"{ways}){why}")


def _ways(rule: ApprovalRule, alias: str, version: str) -> str:
    found = {"environment": f"approve the deployment of the `{rule.environment or alias}` environment",
             "review": "approve the pull request",
             "comment": f"comment `/mlops-bot approve v{version} {alias}`"}
    ways = [found[v] for v in rule.via if v in found]
    return ways[0] if len(ways) == 1 else ", ".join(ways[:-1]) + ", or " + ways[-1]
