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
import os
from collections.abc import Mapping
from pathlib import Path

from ..ci.context import CIContext, read_context
from ..ci.outputs import CIOutput
from ..config import load_config
from ..config.model import Config
from ..console import annotation, log
from ..decide.decision import Decision
from ..errors import EXIT_NEGATIVE, EXIT_OK
from ..registry.base import Registry

DECISION_FILE = ".mlops-bot/decision.json"
# ml.yaml's promote.on names the CI's events; push covers GitHub's push and GitLab's push pipelines.
_PROMOTE_EVENTS = {"push": "push", "web": "manual", "workflow_dispatch": "workflow_dispatch",
                   "schedule": "schedule", "api": "manual", "trigger": "manual"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-post", action="store_true", help="write the report, summary and outputs only")
    parser.epilog = ("Exit 0 when the criteria pass (or the gate is open), 1 when they do not, 3 when a step, "
                     "the registry or the forge failed.")


def main(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    context = read_context(env)
    log(f"mlops-bot ci: {context.platform} {context.event}: {context.flow} ({context.reason})")
    if context.flow == "none":
        annotation("notice", f"mlops-bot: nothing to do: {context.reason}")
        return EXIT_OK
    config = load_config(Path(args.directory) / args.config)
    from ..registry import open_registry

    registry = open_registry(config.tracking.uri, config.root)
    out = CIOutput(context.platform, env, root=config.root)
    try:
        if context.flow == "gate":
            return _gate(config, registry, out)
        return _check_and_promote(config, registry, context, env, out, post=not args.no_post)
    finally:
        registry.close()


def _gate(config: Config, registry: Registry, out: CIOutput) -> int:
    from .gate import check_gate, describe_gate

    result = check_gate(config, registry)
    log(describe_gate(result))
    out.outputs({"gate": "open" if result.is_open else "closed", "model-version": result.version or ""})
    if not result.is_open:
        annotation("error", describe_gate(result))
    return EXIT_OK if result.is_open else EXIT_NEGATIVE


def _check_and_promote(config: Config, registry: Registry, context: CIContext, env: Mapping[str, str],
                       out: CIOutput, post: bool) -> int:
    from ..pipeline.execute import run_pipeline
    from .compare import compare_registry, workspace_predictions
    from .report import links_for, publish

    result = run_pipeline(config, registry)
    decision = compare_registry(config, registry, result.run_id, workspace_predictions(config))
    _write_decision(config, decision)
    values = {"run-id": result.run_id or "", "reused": "true" if result.reused else "false", "promoted": "false",
              "model-version": ""}
    if context.flow == "promote" and _may_promote(config, context):
        values.update(_promote(config, registry, decision, context))
    publication = publish(decision, context, env, settings=config.report, root=config.root, post=post,
                          links=links_for(context, decision, config.tracking.uri))
    out.outputs({**values, "report-path": str(publication.report_file)})
    return EXIT_OK if decision.passed else EXIT_NEGATIVE


def _may_promote(config: Config, context: CIContext) -> bool:
    event = _PROMOTE_EVENTS.get(context.event, context.event)
    if event in config.promote.on:
        return True
    log(f"not promoting: the event '{context.event}' is not in promote.on ({', '.join(config.promote.on)})")
    return False


def _promote(config: Config, registry: Registry, decision: Decision, context: CIContext) -> dict[str, str]:
    from .promote import promote_flow

    promotion, _ = promote_flow(config, registry, decision, context, run_given=True)
    return {"promoted": "true" if promotion.is_champion else "false", "model-version": promotion.version.version}


def _write_decision(config: Config, decision: Decision) -> None:
    import json

    from ..pipeline.hashing import write_atomic

    path = config.root / DECISION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(decision.to_dict(), indent=2) + "\n")
