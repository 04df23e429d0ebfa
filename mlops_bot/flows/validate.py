"""`mlops-bot validate`: schema and consistency checks of ml.yaml; every problem at once, exit 0 or 2."""

from __future__ import annotations

import argparse

from ..console import emit_json, log
from ..errors import ConfigError
from .project import Project


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "Prints each problem as FILE:LINE:COL: path: message (and as annotations in GitHub Actions)."


def main(args: argparse.Namespace, project: Project) -> int:
    path = project.config_path
    try:
        config = project.config
    except ConfigError as exc:
        if args.json:
            emit_json({"valid": False, "problems": [p._asdict() for p in exc.problems]})
        raise
    if args.json:
        emit_json({"valid": True, "problems": [], "model": config.model.name, "steps": list(config.pipeline)})
    log(f"{path}: valid ({len(config.pipeline)} steps, {len(config.compare.criteria)} criteria, "
        f"{len(config.deploy)} deploy targets)")
    return 0
