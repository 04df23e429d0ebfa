"""Copying a model version to another registry (`mlops-bot promote --to-registry URI`), e.g. from a dev
workspace to the production one: its run (lifecycle/transfer_run.py), then the registered model, the version
and its Logged Model link.

The version keeps the source's lineage, verdict, decision and approvals, and gains `COPIED_FROM`
("<redacted source URI>#<model>/<version>"); what only happened on the source is left behind (deploys,
stages reached, alias moves and their emulation tags, champion life). Its `RUN_ID` lineage names the target's
run, whose `tags.COPIED_RUN` tag names the source's.

Idempotent: the version is created only after the target run is FINISHED with every file, and a copy that
exists already (its run found by tag, the version by COPIED_FROM) is reported, not made again; a copy killed
at any point is completed by the next call. The target's credentials: lifecycle/transfer_target.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config.model import Config
from ..console import log
from ..errors import AuthError, DataError, NotFound
from ..events.bus import emit
from ..events.event import model_subject
from ..registry import tags
from ..registry.base import ModelVersion, Registry, Run
from ..registry.lock import registry_lock
from ..support.urls import redact
from .promotion import MODEL_ARTIFACT, model_source
from .transfer_run import RunCopy, ensure_run, find_copy, run_marker, source_label
from .transfer_target import for_target, refuse_same_store

# a version's tags that only mean something in the registry that wrote them
SOURCE_ONLY_PREFIXES = (tags.DEPLOY_PREFIX, tags.ALIAS_PREFIX, tags.STAGE_PREFIX, tags.MOVE_PREFIX)
SOURCE_ONLY_TAGS = frozenset({tags.PROMOTED_AT, tags.REPLACED_BY, tags.ROLLED_BACK, tags.DRIFT_RETRAINED})


@dataclass(frozen=True)
class Transfer:
    """What a copy reads from and writes to; `config` names the model, the experiment and the audit log."""

    config: Config
    source: Registry
    target: Registry
    source_uri: str  # the project's tracking URI (recorded redacted)


@dataclass(frozen=True)
class Copied:
    model: str
    version: str
    source_uri: str  # redacted
    target_uri: str  # redacted
    target_version: str
    target_run_id: str
    copied: bool  # False: the copy was there already

    @property
    def message(self) -> str:
        if self.copied:
            return (f"copied {self.model} v{self.version} from {self.source_uri} to {self.target_uri} as "
                    f"v{self.target_version}")
        return f"{self.model} v{self.version} already copied to {self.target_uri} as v{self.target_version}"

    def as_json(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "target_uri": self.target_uri,
                "target_version": self.target_version, "copied": self.copied}


def copy_marker(source_uri: str, model: str, version: str) -> str:
    """The COPIED_FROM value of a copy of `model` v`version`."""
    return f"{source_label(source_uri)}#{model}/{version}"


def copied_version_tags(version: ModelVersion, marker: str, target_run_id: str) -> dict[str, str]:
    """The tags the copy carries: the source's, less the source-only ones, pointing at the target's run."""
    kept = {k: v for k, v in version.tags.items()
            if k not in SOURCE_ONLY_TAGS and not k.startswith(SOURCE_ONLY_PREFIXES) and v}
    return {**kept, tags.RUN_ID: target_run_id, tags.COPIED_FROM: marker}


def copy_version(transfer: Transfer, version: ModelVersion) -> Copied:
    """Copies `version` (with its run) to the target registry, or finds the copy made before."""
    try:
        return _copy(transfer, version)
    except AuthError as exc:
        if exc.url.startswith(redact(transfer.target.tracking_uri).rstrip("/")):
            raise for_target(exc) from None
        raise


def _copy(transfer: Transfer, version: ModelVersion) -> Copied:
    source, target, name = transfer.source, transfer.target, version.name
    run = source_run(source, version)
    path = model_path(version, run)
    check_source(source, version, run, path)
    refuse_same_store(target, run, target.tracking_uri)
    plan = RunCopy(transfer.config.tracking.experiment, run_marker(transfer.source_uri, run.run_id))
    marker = copy_marker(transfer.source_uri, name, version.version)
    made = existing_copy(target, name, plan, marker)
    if made is not None:
        _sync_tags(target, made, copied_version_tags(version, marker, made.run_id))
        return _result(transfer, version, made, copied=False)
    copy = ensure_run(source, target, run, plan, name)
    made = register_copy(transfer, version, copy, path, marker)
    result = _result(transfer, version, made, copied=True)
    emit(transfer.config, "model_version.copied", model_subject(name, version.version), {
        "model": name, "version": version.version, "run_id": run.run_id, "source_uri": result.source_uri,
        "target_uri": result.target_uri, "target_version": made.version, "target_run_id": copy.run_id})
    return result


def source_run(source: Registry, version: ModelVersion) -> Run:
    """The run the version was registered from; DataError when it has none (anymore)."""
    where = f"{version.name} v{version.version}"
    if not version.run_id:
        raise DataError(f"{where} was registered without a run (source {redact(version.source)}): only a version "
                        "of a tracking run can be copied with its artifacts and lineage; register it from a run.")
    try:
        return source.get_run(version.run_id)
    except NotFound:
        raise DataError(f"{where} was registered from run {version.run_id}, which no longer exists in "
                        f"{redact(source.tracking_uri)}; nothing was copied.") from None


def model_path(version: ModelVersion, run: Run) -> str:
    """The run's artifact directory the version was registered from: the path below the run's artifact URI
    (or in its runs:/ form); `model` for a Logged Model (made from the run's model artifact by `promote`)."""
    for prefix in (run.artifact_uri.rstrip("/") + "/", f"runs:/{run.run_id}/"):
        if version.source.startswith(prefix) and version.source[len(prefix):].strip("/"):
            return version.source[len(prefix):].strip("/")
    return MODEL_ARTIFACT


def check_source(source: Registry, version: ModelVersion, run: Run, path: str) -> None:
    """Only a finished run with files under the version's path is copied (listed, not assumed)."""
    where = f"{version.name} v{version.version}"
    if run.status != "FINISHED":
        raise DataError(f"{where}: its run {run.run_id} is {run.status}, not FINISHED; wait for it to finish.")
    if not source.list_artifacts(run.run_id, path):
        raise DataError(f"{where}: its run {run.run_id} has no files under '{path}' (a model whose files live "
                        "only in a Logged Model outside its run is not copied); nothing was copied.")


def existing_copy(target: Registry, model: str, plan: RunCopy, marker: str) -> ModelVersion | None:
    """The target's version copied from `marker`, registered from the FINISHED copy of the run; None if none."""
    experiment = target.get_or_create_experiment(plan.experiment)
    copy = find_copy(target, experiment.experiment_id, plan.marker)
    if copy is None or copy.status != "FINISHED":
        return None
    try:
        versions = target.search_model_versions(model)
    except NotFound:
        return None
    found = [v for v in versions if v.run_id == copy.run_id and v.tags.get(tags.COPIED_FROM) == marker]
    return min(found, key=lambda v: (len(v.version), v.version)) if found else None


def register_copy(transfer: Transfer, version: ModelVersion, copy: Run, path: str, marker: str) -> ModelVersion:
    """The target's version of the complete copy `copy`: linked to a Logged Model when the files are an MLflow
    Model (as `promote` registers one), made once under the target's lock."""
    source, target, name = transfer.source, transfer.target, version.name
    target.get_or_create_registered_model(name, _model_description(source, name))
    where, model_id = model_source(target, copy, target.list_artifacts(copy.run_id, path), name, path)
    wanted = copied_version_tags(version, marker, copy.run_id)
    with registry_lock(target, name):  # two copies at once make one version
        made = target.create_model_version(name, where, copy.run_id, wanted, version.description,
                                           model_id=model_id or "")
        _sync_tags(target, made, wanted)
    return target.get_model_version(name, made.version)


def _model_description(source: Registry, name: str) -> str:
    try:
        return source.get_registered_model(name).description
    except NotFound:
        return ""


def _sync_tags(target: Registry, made: ModelVersion, wanted: dict[str, str]) -> None:
    """A copy made before (or by a peer at once) gets the source's current tags: an approval given since."""
    for key, value in wanted.items():
        if made.tags.get(key) != value:
            target.set_model_version_tag(made.name, made.version, key, value)


def _result(transfer: Transfer, version: ModelVersion, made: ModelVersion, copied: bool) -> Copied:
    result = Copied(version.name, version.version, source_label(transfer.source_uri),
                    redact(transfer.target.tracking_uri).rstrip("/"), made.version, made.run_id, copied)
    log(result.message)
    return result
