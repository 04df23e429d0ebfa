"""What a drift check leaves behind: its finding id, a monitoring run in the champion's experiment, and the event.

The finding id is a digest of (model, champion version, what drifted): the same drift seen in another day's batch
has the same id, so an `on:` rule can act on a finding once. The monitoring run is made only once both inputs were
read and checked, so a bad input records nothing; a failure after it was made marks it FAILED.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.model import Config
from ..console import log
from ..events.bus import emit
from ..events.event import Event, model_subject
from ..registry import tags
from ..registry.base import Registry
from ..support.state import local_state_dir, state_path
from .drift_inputs import Source
from .drift_reference import ChampionRun

REPORT_ARTIFACT = "drift"  # the run's artifact directory: the markdown report and the result as JSON
RESULT_FILE = "drift.json"
PARAM_CHARS = 500  # MLflow's param value limit on older servers
DETECTED, CHECKED = "drift.detected", "drift.checked"


def finding_id(model: str, version: str | None, signature: str) -> str:
    """24 hex digits naming this drift of this champion, whatever the day or the batch."""
    text = json.dumps([model, version or "", signature], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Checked:
    """One finished check: what was compared, the result (a drift.result.DriftResult) and its report."""

    champion: ChampionRun
    reference: Source
    current: Source
    result: Any
    finding_id: str
    report: Path  # the markdown report, written already

    def drifted_features(self) -> list[str]:
        return [f.name for f in self.result.features if f.drifted]

    def summary(self) -> str:
        features, drifted = len(self.result.features), self.drifted_features()
        shown = ", ".join(drifted[:5]) + (f" and {len(drifted) - 5} more" if len(drifted) > 5 else "")
        head = (f"drift: {len(drifted)} of {features} feature(s) drifted ({shown})" if self.result.drifted
                else f"no drift: {len(drifted)} of {features} feature(s) drifted")
        return f"{head}; {len(self.result.findings)} finding(s); rule: {self.result.rule}"


def record_run(config: Config, registry: Registry, checked: Checked, sampling: tuple[int | None, int]) -> str:
    """The monitoring run: tagged with the champion it watched, params, the result's metrics and the report as
    artifacts, FINISHED. Returns its id."""
    model, version, run = config.model.name, checked.champion.version, checked.champion.run
    experiment = run.experiment_id if run is not None else registry.get_or_create_experiment(
        config.tracking.experiment).experiment_id
    labels = {tags.ROLE: tags.ROLE_MONITOR, tags.MONITOR_MODEL: model, tags.MONITOR_VERSION: version or "",
              tags.MONITOR_CHAMPION_RUN: run.run_id if run is not None else "",
              tags.DRIFT_FINDING: checked.finding_id, tags.DRIFT_DETECTED: _flag(checked.result.drifted)}
    name = f"drift check of {model}" + (f" v{version}" if version else "")
    made = registry.create_run(experiment, name, labels)
    try:
        rows, seed = sampling
        params = {"reference": checked.reference.label, "current": checked.current.label,
                  "sample_rows": "all" if rows is None else str(rows), "seed": str(seed)}
        registry.log_batch(made.run_id, params={k: v[:PARAM_CHARS] for k, v in params.items()},
                           metrics=dict(checked.result.metrics()))
        _upload_report(config, registry, made.run_id, checked)
        registry.update_run(made.run_id, "FINISHED")
    except BaseException:
        _mark_failed(registry, made.run_id)
        raise
    return made.run_id


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _upload_report(config: Config, registry: Registry, run_id: str, checked: Checked) -> None:
    with tempfile.TemporaryDirectory(dir=local_state_dir(state_path(config.root)), prefix="drift-upload-") as tmp:
        folder = Path(tmp)
        shutil.copyfile(checked.report, folder / checked.report.name)
        (folder / RESULT_FILE).write_text(checked.result.to_json(), encoding="utf-8")
        registry.upload_artifacts(run_id, folder, REPORT_ARTIFACT)


def _mark_failed(registry: Registry, run_id: str) -> None:
    try:
        registry.update_run(run_id, "FAILED")
    except Exception as exc:  # the original failure matters more than the status update
        log(f"mlops-bot drift: warning: could not mark the monitoring run {run_id} FAILED: {exc}")


def emit_checked(config: Config, checked: Checked, run_id: str, report_file: str) -> Event:
    """drift.detected when the dataset drifted, else drift.checked (schemas/event.schema.json)."""
    version = checked.champion.version
    data = {"model": config.model.name, "version": version, "finding_id": checked.finding_id,
            "drifted_features": checked.drifted_features(), "findings": len(checked.result.findings),
            "report_file": report_file, "run_id": run_id, "summary": checked.summary()}
    kind = DETECTED if checked.result.drifted else CHECKED
    return emit(config, kind, model_subject(config.model.name, version), data)


def feature_rows(result: Any) -> Sequence[tuple[str, ...]]:
    """The table `mlops-bot drift` prints: feature, kind, each test's statistic (p-value), drifted."""
    rows = []
    for feature in result.features:
        tests = "  ".join(_test_text(t) for t in feature.tests) or "-"
        rows.append((feature.name, feature.kind, tests, "DRIFT" if feature.drifted else "ok"))
    return rows


def _test_text(test: Any) -> str:
    mark = "*" if test.drifted else ""
    if test.p_value is not None:
        return f"{test.name} p={test.p_value:.3g}{mark}"
    return f"{test.name}={test.statistic:.3g}{mark}"
