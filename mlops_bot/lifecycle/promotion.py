"""Registering a challenger and moving the champion alias, safely.

Register is idempotent (one version per run and source). The alias moves under the registry lock: the
champion is re-read there, and if it changed since the comparison the challenger is judged again against
the new one, so two merges promoting at once cannot both win. Every write can be repeated, so a re-run
after a kill at any point converges on the state of an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from ..config.model import Config
from ..console import log
from ..decide.decision import Decision
from ..errors import DataError
from ..events.bus import emit
from ..events.event import model_subject
from ..registry import alias_holder, tags
from ..registry.base import ModelVersion, Registry, Run
from ..registry.lock import LockTimeout, registry_lock
from .approvals import read_approval
from .history import Move, Mover, now_ms, write_move

MODEL_ARTIFACT = "model"  # where the pipeline uploads config.model.artifact in the run
MLMODEL = "MLmodel"  # the file that makes a directory an MLflow Model
ATTEMPTS = 5  # comparisons again when the champion keeps moving under us
Recompare = Callable[[], Decision]  # the comparison made again against whoever is champion now
# promoted: the alias moved in this call; already_champion: the version held it before; not_promoted: it failed
Outcome = Literal["promoted", "already_champion", "not_promoted"]


@dataclass(frozen=True)
class Promotion:
    version: ModelVersion
    decision: Decision
    outcome: Outcome
    replaced: str | None  # the version that held the alias before
    reason: str

    @property
    def promoted(self) -> bool:
        return self.outcome == "promoted"

    @property
    def already(self) -> bool:
        return self.outcome == "already_champion"

    @property
    def is_champion(self) -> bool:
        return self.outcome != "not_promoted"


def lineage_tags(decision: Decision, run_tags: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The version's lineage: git, run, ml.yaml and data hashes, the verdict; `extra` holds CI context."""
    found = {
        tags.COMMIT: run_tags.get(tags.MLFLOW_GIT_COMMIT, ""),
        tags.BRANCH: run_tags.get(tags.MLFLOW_GIT_BRANCH, ""),
        tags.CONFIG_DIGEST: run_tags.get(tags.CONFIG_DIGEST, ""),
        tags.DATA_HASH: run_tags.get(tags.DATA_HASH, ""),
        tags.RUN_ID: decision.challenger.run_id or "",
        # The pull request that trained the run (its check tagged it): a merge's push event does not say it.
        tags.PULL_REQUEST: run_tags.get(tags.PULL_REQUEST, ""),
        **extra,
        **verdict_tags(decision),
    }
    return {k: v for k, v in found.items() if v}


def verdict_tags(decision: Decision) -> dict[str, str]:
    compared = "bootstrap" if decision.champion is None else (decision.champion.version or "")
    return {tags.VERDICT: decision.verdict, tags.DECISION_SUMMARY: decision.summary[:4000],
            tags.COMPARED_WITH: compared}


def register(config: Config, registry: Registry, decision: Decision, extra: Mapping[str, str]) -> ModelVersion:
    run_id = decision.challenger.run_id
    if not run_id:
        raise ValueError("a decision made from metrics files has no run to register")
    run = registry.get_run(run_id)
    files = check_complete(registry, run)
    registry.get_or_create_registered_model(config.model.name, f"Trained by mlops-bot from {config.path.name}.")
    lineage = lineage_tags(decision, run.tags, extra)
    description = f"{decision.summary}\nrun {run_id}, commit {lineage.get(tags.COMMIT, 'unknown')[:12]}"
    source, model_id = model_source(registry, run, files, config.model.name)
    version = registry.create_model_version(config.model.name, source, run_id, lineage, description,
                                            model_id=model_id or "")
    for key, value in lineage.items():  # an existing version (a re-run) gets the latest verdict too
        if version.tags.get(key) != value:
            registry.set_model_version_tag(config.model.name, version.version, key, value)
    log(f"registered {config.model.name} v{version.version} from run {run_id}")
    emit(config, "model_version.registered", model_subject(config.model.name, version.version), {
        "model": config.model.name, "version": version.version, "run_id": run_id, "source": version.source,
        "verdict": decision.verdict})
    return registry.get_model_version(config.model.name, version.version)


def model_source(registry: Registry, run: Run, files: list[str], name: str,
                 path: str = MODEL_ARTIFACT) -> tuple[str, str | None]:
    """The source a version of `name` registers from the run's artifact `path` holding `files`, and its Logged
    Model's id. An MLflow Model becomes a Logged Model of the run (MLflow 3): the version is linked to it, as
    mlflow.register_model("models:/<model_id>") does, so models:/<name>@<alias> and get_model_info read it."""
    model_id = registry.log_model(run.run_id, path, name) if MLMODEL in files else None
    return (f"models:/{model_id}" if model_id else f"{run.artifact_uri.rstrip('/')}/{path}"), model_id


def check_complete(registry: Registry, run: Run) -> list[str]:
    """Only a finished, complete run is registered: FINISHED, with at least one file under its model artifact
    (listed, not assumed; returned). Raises DataError (exit 3) naming the run and what it lacks; called before
    anything is registered."""
    if run.status != "FINISHED":
        raise DataError(f"run {run.run_id} is {run.status}, not FINISHED: only a finished run is promoted; wait "
                        "for it to finish, or promote another run.")
    files = registry.list_artifacts(run.run_id, MODEL_ARTIFACT)
    if not files:
        raise DataError(f"run {run.run_id} has no model: its artifact '{MODEL_ARTIFACT}' is missing or empty; "
                        "nothing was registered. Promote a run of `mlops-bot run` that uploaded "
                        "model.artifact of ml.yaml.")
    return files


def promote(config: Config, registry: Registry, version: ModelVersion, decision: Decision,
            recompare: Recompare, mover: Mover | None = None) -> Promotion:
    """Moves the alias to `version` when the decision passes against whoever is champion at that moment.

    Optimistic: the comparison (possibly a long rescore) runs outside the lock; under it the champion is
    read again and the alias moves only if it is still the one judged against. Otherwise: compare again.
    `mover` (who and where) goes into the move's history record.
    """
    name, alias = config.model.name, config.promote.alias
    for _ in range(ATTEMPTS):
        current = alias_holder(registry, name, alias)
        if current is not None and current.version == version.version:
            return Promotion(version, decision, "already_champion", None, f"v{version.version} is already the {alias}")
        if _holder(current) != _judged_against(decision):
            log(f"the {alias} is now v{_holder(current) or 'none'}, not the one compared with; comparing again")
            decision = recompare()
            for key, value in verdict_tags(decision).items():
                registry.set_model_version_tag(name, version.version, key, value)
        if not decision.passed:
            return Promotion(version, decision, "not_promoted", None, f"not promoted: {decision.summary}")
        with registry_lock(registry, name):
            now = alias_holder(registry, name, alias)
            if _holder(now) == _judged_against(decision):
                _move(registry, config, (version, now), decision, mover or Mover("", ""))
                replaced = _holder(now)
                return Promotion(version, decision, "promoted", replaced, f"v{version.version} is now the {alias}"
                                 + (f" (replacing v{replaced})" if replaced else ""))
    raise LockTimeout(f"the {alias} of {name} kept changing during {ATTEMPTS} attempts to promote "
                      f"v{version.version}; run promote again.")


def _holder(version: ModelVersion | None) -> str | None:
    return version.version if version is not None else None


def _judged_against(decision: Decision) -> str | None:
    return decision.champion.version if decision.champion is not None else None


def _move(registry: Registry, config: Config, pair: tuple[ModelVersion, ModelVersion | None], decision: Decision,
          mover: Mover) -> None:
    """Moves the alias from `pair`'s second (the holder) to its first, the previous alias to the holder."""
    version, current = pair
    name = config.model.name
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    stamp = now_ms()
    record = Move(alias=config.promote.alias, version=version.version, previous=_holder(current), stamp=stamp,
                  by=mover.by, reason="promote", verdict=decision.verdict, decision=decision.summary,
                  decision_url=version.tags.get(tags.DECISION_URL, "") or mover.where,
                  approval=_approval(version, config.promote.alias), where=mover.where)
    if current is not None:
        # Previous first: a kill between the two writes leaves the old champion serving and reachable.
        write_move(registry, name, record_previous(config, current, record))
        registry.set_alias(name, config.promote.previous_alias, current.version)
        emit(config, "alias.moved", model_subject(name, current.version), {
            "model": name, "alias": config.promote.previous_alias, "version": current.version, "reason": "promote"})
        registry.set_model_version_tag(name, current.version, tags.REPLACED_BY, version.version)
    registry.set_model_version_tag(name, version.version, tags.PROMOTED_AT, now)
    # The record and the stage reached are written before the alias moves: a kill in between leaves a record the
    # holder does not match (flagged for a protected alias), never a move without a record.
    registry.set_model_version_tag(name, version.version, tags.stage_reached(config.promote.alias), now)
    write_move(registry, name, record)
    registry.set_alias(name, config.promote.alias, version.version)
    # Under the registry lock: the event is only written here; its rules run after the lock is released.
    emit(config, "alias.moved", model_subject(name, version.version), {
        "model": name, "alias": config.promote.alias, "version": version.version,
        "previous_version": current.version if current else None, "reason": "promote", "by": mover.by or None,
        "where": mover.where or None})


def record_previous(config: Config, current: ModelVersion, record: Move) -> Move:
    """The record of the previous alias moving to `current`, the version `record` replaces."""
    return Move(alias=config.promote.previous_alias, version=current.version, previous=None, stamp=record.stamp,
                by=record.by, reason=record.reason, where=record.where)


def _approval(version: ModelVersion, alias: str) -> dict[str, str] | None:
    from dataclasses import asdict

    approval = read_approval(version, alias)
    return asdict(approval) if approval is not None else None
