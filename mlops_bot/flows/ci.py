"""`mlops-bot ci`: read where we run and do what the event asks.

- pull/merge request: run the pipeline, compare with the champion, report (comment, status, summary);
- push to the default branch: the same, then promote and deploy when ml.yaml's `promote.on` allows it;
- tag or release: the release gate on the champion;
- anything else: a notice, exit 0.

The exit code is the decision's (0 pass, 1 fail), so a red check means the criteria failed. The Decision
is also written to `.mlops-bot/decision.json` for a follow-up job (the fork-safe pattern in report.py).
"""

from __future__ import annotations

import argparse

from ..ci.context import CIContext, read_context
from ..ci.outputs import CIOutput
from ..config.model import Config
from ..console import annotation, log
from ..decide.decision import Decision
from ..decide.document import to_document
from ..errors import EXIT_NEGATIVE, EXIT_OK, BotError
from ..registry import tags
from ..registry.base import Registry
from ..support.state import DECISION_FILE, state_path
from .project import Project

# ml.yaml's promote.on names the CI's events; push covers GitHub's push and GitLab's push pipelines.
_PROMOTE_EVENTS = {"push": "push", "web": "manual", "workflow_dispatch": "workflow_dispatch",
                   "schedule": "schedule", "api": "manual", "trigger": "manual"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-post", action="store_true", help="write the report, summary and outputs only")
    parser.epilog = ("Exit 0 when the criteria pass (or the gate is open), 1 when they do not, 3 when a step, "
                     "the registry or the forge failed.")


def main(args: argparse.Namespace, project: Project) -> int:
    context = read_context(project.env)
    log(f"mlops-bot ci: {context.platform} {context.event}: {context.flow} ({context.reason})")
    if context.flow == "none":
        annotation("notice", f"mlops-bot: nothing to do: {context.reason}")
        return EXIT_OK
    out = CIOutput(context.platform, project.env, root=project.config.root)
    if context.flow == "gate":
        return _gate(project.config, project.registry, out)
    return _check_and_promote(project, context, out, post=not args.no_post)


def _gate(config: Config, registry: Registry, out: CIOutput) -> int:
    from .gate import check_gate, describe_gate

    result = check_gate(config, registry)
    log(describe_gate(result))
    out.outputs({"gate": "open" if result.is_open else "closed", "model-version": result.version or ""})
    if not result.is_open:
        annotation("error", describe_gate(result))
    return EXIT_OK if result.is_open else EXIT_NEGATIVE


def _check_and_promote(project: Project, context: CIContext, out: CIOutput, post: bool) -> int:
    """Run, compare, promote where allowed, then report. The report is never lost: a deploy target that
    failed is raised (exit 3) only after the comment, status, summary and outputs were written."""
    from ..lifecycle.stages import entry_stage
    from ..pipeline.execute import run_pipeline
    from .compare import Predictions, compare_registry, workspace_predictions
    from .promote import config_for
    from .report import Delivery, links_for, publish

    config, registry = project.config, project.registry
    result = run_pipeline(config, registry)
    if context.pr_number and result.run_id and context.flow == "check":
        # The run remembers its pull request: the version a merge registers from it finds the PR's reviews.
        registry.log_batch(result.run_id, tags={tags.PULL_REQUEST: str(context.pr_number)})
    promoting = context.flow == "promote" and _may_promote(config, context)
    # A merge is judged by the criteria of the stage it moves (with promote.stages, the entry stage's).
    judged = config_for(config, entry_stage(config)) if promoting else config
    decision = compare_registry(judged, registry, result.run_id, Predictions(workspace_predictions(config)))
    _write_decision(config, decision)
    values = {"run-id": result.run_id or "", "reused": "true" if result.reused else "false", "promoted": "false",
              "model-version": ""}
    failure: BotError | None = None
    if promoting:
        decision, failure = _promote(project, decision, context, values)
    links = links_for(context, decision, config.tracking.uri)
    publication = publish(decision, Delivery(context, project.env, config.root, config.report, links, post=post))
    out.outputs({**values, "report-path": str(publication.report_file)})
    if failure is not None:
        raise failure
    return EXIT_OK if decision.passed else EXIT_NEGATIVE


def _may_promote(config: Config, context: CIContext) -> bool:
    event = _PROMOTE_EVENTS.get(context.event, context.event)
    if event in config.promote.on:
        return True
    log(f"not promoting: the event '{context.event}' is not in promote.on ({', '.join(config.promote.on)})")
    return False


def _promote(project: Project, decision: Decision, context: CIContext,
             values: dict[str, str]) -> tuple[Decision, BotError | None]:
    """The decision that counted (judged again if the champion moved under the lock) and the deploy failure or
    the stage's refusal (its approval is missing), if any, kept until the report is out."""
    from ..deploy import raise_for_failures
    from ..lifecycle.stages import StageRefused
    from .approvers import forge_approval
    from .promote import deploy_champion, promote_run

    config, registry = project.config, project.registry
    try:
        promotion = promote_run(config, registry, decision, context, run_given=True,
                                ask=lambda version, stage: forge_approval(project, version, stage))
    except StageRefused as exc:
        log(f"not promoted: {exc}")
        return decision, exc
    values.update(promoted="true" if promotion.is_champion else "false", **{"model-version": promotion.version.version})
    if promotion.decision is not decision:
        _write_decision(config, promotion.decision)
    try:
        raise_for_failures(deploy_champion(config, registry, promotion))
    except BotError as exc:
        return promotion.decision, exc
    return promotion.decision, None


def _write_decision(config: Config, decision: Decision) -> None:
    import json

    from ..support.files import write_atomic

    path = state_path(config.root, DECISION_FILE)
    write_atomic(path, json.dumps(to_document(decision), indent=2) + "\n")
