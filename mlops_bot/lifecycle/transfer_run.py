"""The run half of a copy between registries (lifecycle/transfer.py): the source version's run, re-created in
the target with its params, latest metrics, tags and every artifact file.

The target run is found again by a tag (`tags.COPIED_RUN`: "<redacted source URI>#<source run id>"), so a copy that
was killed at any point is completed by the next one: what the run lacks is logged, every file is uploaded
again (a file cut short by the kill is overwritten), and the run is set FINISHED only once the target lists
every file the source lists. A FINISHED target run is a complete one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..console import log
from ..errors import RemoteError
from ..registry import tags
from ..registry.base import Registry, Run, RunStatus
from ..registry.lock import registry_lock
from ..support.urls import redact

# a run's tags that only mean something where they were written: creation tokens, locks, links to other runs
SOURCE_ONLY_RUN_TAGS = frozenset({tags.CREATE_TOKEN, tags.LOCK_OWNER, tags.LOCK_EXPIRES, tags.MLFLOW_PARENT_RUN_ID,
                                  tags.PARENT_RUN, "mlflow.log-model.history", tags.COPIED_RUN})
_FINISHED: RunStatus = "FINISHED"


@dataclass(frozen=True)
class RunCopy:
    """Where a source run goes: the target's experiment and the tag value that finds the copy again."""

    experiment: str
    marker: str  # the tags.COPIED_RUN value


def source_label(uri: str) -> str:
    """The source's tracking URI as recorded on copies: redacted, no trailing '/', no quote characters (the
    value is searched for in a filter)."""
    return redact(uri.strip() or "local").rstrip("/").replace("'", "%27").replace('"', "%22")


def run_marker(source_uri: str, run_id: str) -> str:
    return f"{source_label(source_uri)}#{run_id}"


def copied_run_tags(run: Run) -> dict[str, str]:
    """The source run's tags as the copy carries them (lineage and MLflow's own, not the source-only ones)."""
    return {k: v for k, v in run.tags.items() if k not in SOURCE_ONLY_RUN_TAGS}


def find_copy(target: Registry, experiment_id: str, marker: str) -> Run | None:
    """The target's copy of the run, the oldest when a race made two."""
    # A quote cannot be escaped in MLflow's filter language: such a marker is compared here instead.
    query = "" if "'" in marker else f"tags.`{tags.COPIED_RUN}` = '{marker}'"
    found = [r for r in target.search_runs([experiment_id], query) if r.tags.get(tags.COPIED_RUN) == marker]
    return min(found, key=lambda r: (r.start_time, r.run_id)) if found else None


def ensure_run(source: Registry, target: Registry, run: Run, plan: RunCopy, model: str) -> Run:
    """The complete, FINISHED copy of `run` in the target: found, completed or made."""
    experiment_id = target.get_or_create_experiment(plan.experiment).experiment_id
    copy = find_copy(target, experiment_id, plan.marker)
    if copy is None:
        with registry_lock(target, model):  # two copies at once make one run
            copy = find_copy(target, experiment_id, plan.marker) or \
                target.create_run(experiment_id, run.name, {tags.COPIED_RUN: plan.marker})
    wanted = source.list_artifacts(run.run_id)
    finished = copy.status == _FINISHED
    if not finished:
        _log_missing(target, copy, run)
    if not finished or missing_files(target, copy.run_id, wanted):
        upload_all(source, target, run.run_id, copy.run_id)
        absent = missing_files(target, copy.run_id, wanted)
        if absent:
            raise RemoteError("MLflow", None, redact(target.tracking_uri),
                              f"run {copy.run_id} lacks {len(absent)} of the {len(wanted)} files uploaded to it "
                              f"(first: {absent[0]}); nothing was registered: run the copy again.")
    if not finished:
        target.update_run(copy.run_id, _FINISHED)
    return target.get_run(copy.run_id)


def _log_missing(target: Registry, copy: Run, run: Run) -> None:
    """What the target run lacks of the source's params, latest metrics and tags; values logged already are left
    alone (a metric logged twice would be two points)."""
    params = _differing(run.params, copy.params)
    metrics = {k: v for k, v in run.metrics.items() if k not in copy.metrics}
    run_tags = _differing(copied_run_tags(run), copy.tags)
    if params or metrics or run_tags:
        target.log_batch(copy.run_id, params=params, metrics=metrics, tags=run_tags)


def _differing(wanted: Mapping[str, str], present: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in wanted.items() if present.get(k) != v}


def missing_files(target: Registry, run_id: str, wanted: list[str]) -> list[str]:
    """The files of `wanted` the target run does not list, sorted."""
    present = set(target.list_artifacts(run_id))
    return sorted(f for f in wanted if f not in present)


def upload_all(source: Registry, target: Registry, source_run: str, target_run: str) -> None:
    """Every artifact of the source run, downloaded (through the registry's guards: names confined, listings and
    bytes bounded) and uploaded to the target run as they were."""
    with tempfile.TemporaryDirectory(prefix="mlops-bot-copy-") as tmp:
        local = source.download_artifacts(source_run, "", Path(tmp) / "run")
        log(f"uploading the artifacts of run {source_run} to run {target_run} of {redact(target.tracking_uri)}")
        target.upload_artifacts(target_run, local, "")
