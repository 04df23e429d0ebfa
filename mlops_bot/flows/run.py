"""`mlops-bot run`: run the training pipeline, skipping cached steps and reusing an identical earlier run.

Imports are kept inside `main`: a run where provably nothing changed is answered by `pipeline.noop`
before ml.yaml is even parsed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..console import emit_json, log
from ..pipeline.summary import summary
from .project import Project


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="run every step, ignoring the cache and earlier runs")
    parser.add_argument("--step", metavar="NAME", help="run only NAME and the steps it depends on")
    parser.add_argument("--dry-run", action="store_true", help="say which steps would run and why; run nothing")
    parser.epilog = ("A step runs when its command, deps, params or env changed since ml.lock recorded it, or its "
                     "outs are missing. Exit 3 when a step fails, 130 when interrupted.")




def _print_plan(doc: dict[str, Any]) -> None:
    for step in doc["steps"]:
        why = f": {'; '.join(step['reasons'])}" if step["reasons"] else ""
        print(f"{step['name']}: {step['status']}{why}", flush=True)


def _replayed(config_path: Path, started: float) -> dict[str, Any] | None:
    from .. import __version__
    from ..pipeline.noop import replay
    from ..pipeline.summary import cached_lines

    doc = replay(config_path, __version__)
    if doc is None:
        return None
    for line in cached_lines(doc):
        log(line)
    return {**doc, "duration_s": round(time.monotonic() - started, 3)}


def main(args: argparse.Namespace, project: Project) -> int:
    started = time.monotonic()
    plain = not (args.force or args.step or args.dry_run)
    doc = _replayed(project.config_path, started) if plain else None
    if doc is None:
        doc = _run(args, project)
    if args.json:
        emit_json(doc)
    elif args.dry_run:
        _print_plan(doc)
    if not args.dry_run:
        log(summary(doc))
    return 0


def _run(args: argparse.Namespace, project: Project) -> dict[str, Any]:
    from ..pipeline.execute import run_pipeline
    from ..pipeline.result import PipelineStepFailed, RunOptions

    options = RunOptions(force=args.force, step=args.step, dry_run=args.dry_run)
    try:
        # The registry is opened only when needed: a fully cached run does not touch the server.
        return run_pipeline(project.config, lambda: project.registry, options).as_json()
    except PipelineStepFailed as exc:
        if args.json:
            emit_json({**exc.result.as_json(), "error": str(exc).splitlines()[0]})
        raise
