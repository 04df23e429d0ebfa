"""`mlops-bot drift`: compare the data the champion sees now with the data it was trained on (`monitor:` in
ml.yaml), and say whether it drifted.

The champion is the version behind compare.champion.alias. The reference is monitor.reference or the champion's
training data from its lineage (drift_reference); the current data is --current PATH or monitor.current (a path
or glob, a URL, or a command: drift_inputs, drift_fetch). Both are read (mlops_bot/drift: sampled when monitor.sample
says so) and checked; then, and only then, the markdown report is written (monitor.report, atomically), a
monitoring run is recorded in the champion's experiment and drift.detected or drift.checked is emitted
(drift_record). Exit 0 no drift, 1 drift, 2 bad usage or configuration, 3 unusable data or a failing service.
`watch --drift-every S` runs the same check on an interval (`check_drift`).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..config.model import Config, Monitor
from ..console import emit_json, log
from ..errors import EXIT_NEGATIVE, EXIT_OK, DataError, UsageError
from ..registry.base import Registry
from ..support.files import write_atomic
from ..support.state import local_state_dir, state_path
from .drift_inputs import Source, current_data
from .drift_record import Checked, emit_checked, feature_rows, finding_id, record_run
from .drift_reference import ChampionRun, find_champion, reference_data
from .project import Project


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--current", metavar="PATH",
                        help="the current data (a .csv/.tsv/.parquet file, a directory of them or a glob) instead of "
                        "monitor.current")
    parser.epilog = ("Exit 0 when the data did not drift, 1 when it did (the report is written either way), 2 for bad "
                     "usage or configuration, 3 when the data cannot be read or a service keeps failing.")


@dataclass(frozen=True)
class Outcome:
    checked: Checked
    run_id: str
    event_id: str

    def document(self, config: Config) -> dict[str, Any]:
        """What --json prints."""
        champion = self.checked.champion
        return {"model": config.model.name, "version": champion.version,
                "champion_run_id": champion.run.run_id if champion.run is not None else None,
                "drifted": bool(self.checked.result.drifted), "finding_id": self.checked.finding_id,
                "run_id": self.run_id, "event_id": self.event_id, "report_file": str(self.checked.report),
                "reference": self.checked.reference.label, "current": self.checked.current.label,
                "summary": self.checked.summary(), "result": self.checked.result.as_dict()}


def main(args: argparse.Namespace, project: Project) -> int:
    config = project.config
    override = (project.directory, args.current) if args.current else None
    outcome = check_drift(config, project.registry, project.env, override)
    if args.json:
        emit_json(outcome.document(config))
    else:
        print_table(outcome)
    log(f"mlops-bot drift: {outcome.checked.summary()} (finding {outcome.checked.finding_id}, report "
        f"{outcome.checked.report}, monitoring run {outcome.run_id})")
    return EXIT_NEGATIVE if outcome.checked.result.drifted else EXIT_OK


def monitor_of(config: Config) -> Monitor:
    if config.monitor is None:
        raise UsageError(f"{config.path.name} has no `monitor:` section, so there is nothing to check for drift; add "
                         "one (at least `monitor: {current: <path of the current data>}`; see README, Data drift).")
    return config.monitor


def check_drift(config: Config, registry: Registry, env: Mapping[str, str],
                override: tuple[Path, str] | None = None) -> Outcome:
    """One check: both inputs read and compared, the report written, the monitoring run recorded, the event
    emitted. Nothing is recorded when an input cannot be used."""
    monitor = monitor_of(config)
    champion = find_champion(config, registry)
    with tempfile.TemporaryDirectory(dir=local_state_dir(state_path(config.root)), prefix="drift-") as tmp:
        work = Path(tmp)
        reference = reference_data(config, registry, champion, work / "reference")
        current = current_data(config, env, override, work / "current")
        result = compare(monitor, reference, current)
    from ..drift.render import render_markdown

    checked = Checked(champion, reference, current, result,
                      finding_id(config.model.name, champion.version, result.signature()),
                      config.root / monitor.report)
    write_atomic(checked.report, render_markdown(result, _title(config, champion)))
    run_id = record_run(config, registry, checked, (monitor.sample_rows, monitor.seed))
    event = emit_checked(config, checked, run_id, monitor.report)
    return Outcome(checked, run_id, event.id)


def compare(monitor: Monitor, reference: Source, current: Source) -> Any:
    """Reads both tables (pyarrow, sampled when monitor.sample says so) and runs the drift check."""
    from ..drift.check import check
    from ..drift.data import LoadOptions, load_table

    options = LoadOptions(sample_rows=monitor.sample_rows, seed=monitor.seed, max_mb=monitor.max_mb,
                          numeric=monitor.numeric, categorical=monitor.categorical, columns=monitor.features)
    try:
        before = _named(load_table(reference.paths, options, "reference"), reference)
        now = _named(load_table(current.paths, options, "current"), current)
        return check(before, now, monitor)
    except (DataError, UsageError) as exc:  # they name the files read; add where downloaded ones came from
        if type(exc) not in (DataError, UsageError):
            raise
        raise type(exc)(f"{exc} (the reference data: {reference.label}; the current data: {current.label})") \
            from None


def _named(table: Any, source: Source) -> Any:
    """The table, its files named as the report should show them (not the temp files of a download)."""
    return replace(table, files=(source.label,)) if source.fetched else table


def _title(config: Config, champion: ChampionRun) -> str:
    version = f" v{champion.version}" if champion.version else ""
    return f"Data drift of {config.model.name}{version}"


def print_table(outcome: Outcome) -> None:
    rows = [("FEATURE", "KIND", "TESTS", "VERDICT"), *feature_rows(outcome.checked.result)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(row[i].ljust(widths[i]) for i in range(3)) + "  " + row[3], flush=True)
    for finding in outcome.checked.result.findings:
        print(f"- {finding.description}", flush=True)
    print(outcome.checked.summary(), flush=True)
