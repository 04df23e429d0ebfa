"""The metric names the last run `mlops-bot run` recorded holds (`.mlops-bot/run-metrics.json`): those of the
metrics files and those the steps' own mlflow code logged (autolog, `log_metric`, folded from child runs).
`validate` knows a criterion's metric from either; without this record, a criterion on a metric only the
training code logs would be refused as soon as the metrics files exist."""

from __future__ import annotations

import json
from collections.abc import Iterable

from ..support.state import RUN_METRICS_FILE, state_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

MAX_NAMES = 10_000  # a run logs dozens; a record holding more is not one the bot wrote
_FORMAT = 1


def recorded_metrics(root: Path) -> set[str]:
    """The names recorded for the project at `root`; empty when there is no record, or a damaged one."""
    try:
        doc = json.loads(state_path(root, RUN_METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    names = doc.get("metrics") if isinstance(doc, dict) and doc.get("format") == _FORMAT else None
    if not isinstance(names, list) or len(names) > MAX_NAMES:
        return set()
    return {n for n in names if isinstance(n, str)}


def record_metrics(root: Path, run_id: str, names: Iterable[str]) -> None:
    from ..support.files import write_atomic

    doc = {"format": _FORMAT, "run_id": run_id, "metrics": sorted(set(names))[:MAX_NAMES]}
    write_atomic(state_path(root, RUN_METRICS_FILE), json.dumps(doc, indent=1))
