"""`mlops-bot validate`: schema and consistency checks of ml.yaml; every problem at once, exit 0 or 2."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..console import emit_json, log
from ..errors import ConfigError
from .project import Project

if TYPE_CHECKING:
    from ..config.model import Config


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
    notes = _noise(config)
    for note in notes:
        log(f"{path}: note: {note}")
    if args.json:
        emit_json({"valid": True, "problems": [], "model": config.model.name, "steps": list(config.pipeline),
                   "notes": list(notes)})
    log(f"{path}: valid ({len(config.pipeline)} steps, {len(config.compare.criteria)} criteria, "
        f"{len(config.deploy)} deploy targets)")
    return 0


def _noise(config: Config) -> tuple[str, ...]:
    """Rules below what the last run's evaluation rows can resolve (nothing to say before a first run)."""
    if not any(s.predictions and (config.root / s.predictions).is_file() for s in config.pipeline.values()):
        return ()  # no evaluation yet: spare the imports below (a third of `validate`'s time)
    from ..decide.noise import resolution_notes
    from ..errors import BotError
    from ..metrics.predictions import read_predictions
    from .compare import workspace_predictions

    path = workspace_predictions(config)
    if path is None:
        return ()
    try:
        rows = len(read_predictions(path).ids)
    except BotError:
        return ()  # a broken predictions file is compare's to report
    return resolution_notes(config.compare.criteria, rows)
