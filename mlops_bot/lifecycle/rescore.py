"""Fair comparison: the champion's model judged on today's data by the same evaluation step, once per set of
evaluation inputs (rescore_record keeps the result with the champion's run for every later check).

The step that writes metrics runs a second time with the champion's model, downloaded from its run. It
learns what to load and where to write from three variables, so one script serves both runs:
MLOPS_BOT_MODEL_DIR (the model to score), MLOPS_BOT_METRICS_FILE and MLOPS_BOT_PREDICTIONS_FILE (where
its results go, outside the challenger's outs). MLFLOW_RUN_ID is withheld so nothing lands in the
challenger's run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ..config.model import Config, Step
from ..console import log
from ..decide.decision import Champion
from ..errors import DataError
from ..metrics.files import read_metrics
from ..pipeline.runner import run_step
from ..pipeline.tracking import MODEL_ARTIFACT
from ..registry import tags
from ..registry.base import Registry, Run
from ..support.environment import child_environment
from ..support.paths import overlaps
from . import rescore_record as record
from .rescore_record import ENV_METRICS_FILE, ENV_MODEL_DIR, ENV_PREDICTIONS_FILE
from .rescore_remote import evaluate_remote


@dataclass(frozen=True)
class Rescored:
    champion: Champion  # with rescored_metrics filled in
    predictions: Path | None  # the champion's per-row predictions on today's rows
    workdir: Path  # holds the files above; the caller removes it


def scoring_step(config: Config) -> Step:
    """The step that evaluates the model: it writes metrics and reads the model artifact."""
    for step in config.pipeline.values():
        if step.metrics and any(overlaps(dep.rstrip("/"), config.model.artifact.rstrip("/")) for dep in step.deps):
            return step
    raise DataError(f"compare.rescore_champion needs a step that reads {config.model.artifact} and writes a "
                    "metrics file; add the model to that step's deps or set rescore_champion: false.")


@contextmanager
def _guarded(root: Path, files: list[str]) -> Iterator[None]:
    """The challenger's own metrics and predictions survive a step that ignores the variables above."""
    saved = {name: (root / name).read_bytes() for name in files if (root / name).is_file()}
    try:
        yield
    finally:
        for name, data in saved.items():
            if not (root / name).is_file() or (root / name).read_bytes() != data:
                (root / name).write_bytes(data)


def rescore(config: Config, registry: Registry, champion: Champion, run: Run | None = None) -> Rescored:
    """The champion's metrics (and predictions) on today's evaluation inputs: read from the record an earlier
    check left on its run for the same inputs (lifecycle/rescore_record.py), else evaluated now and recorded.
    `run` is the champion's run when the caller read it already (lifecycle/champion.py): it is not read again."""
    if not champion.run_id:
        raise DataError(f"the champion {champion.label} has no tracking run, so its model cannot be rescored; "
                        "set compare.rescore_champion: false.")
    step = scoring_step(config)
    if run is None or run.run_id != champion.run_id:
        run = registry.get_run(champion.run_id)
    workdir = Path(tempfile.mkdtemp(prefix="mlops-bot-rescore-"))
    try:
        digest = run.tags.get(tags.MODEL_DIGEST, "")
        key = record.record_key(config, step, digest) if digest else None
        found = record.find(registry, run, key, workdir / "record") if key else None
        if found is not None:
            log(f"rescored the champion {champion.label} earlier on the same inputs ({found.at}); reusing it")
            return _rescored(champion, found, True, workdir)
        model_dir = registry.download_artifacts(run.run_id, MODEL_ARTIFACT, workdir / "champion")
        if not digest:
            digest = record.model_digest(model_dir)
            key = record.record_key(config, step, digest)
        if step.backend is None:
            evaluation = _evaluate(workdir, config, champion, step, model_dir)
        else:  # where the step runs: its cluster (lifecycle/rescore_remote)
            log(f"rescoring the champion {champion.label} with step '{step.name}' on {step.backend.type}")
            evaluation = evaluate_remote(config, registry, run.run_id, step, key, workdir / "remote")
        if key:
            record.save(registry, run, key, evaluation, digest)
        return _rescored(champion, evaluation, False, workdir)
    except BaseException:  # the caller removes the work directory of a result, nobody that of a failure
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _rescored(champion: Champion, evaluation: record.Evaluation, reused: bool, workdir: Path) -> Rescored:
    return Rescored(replace(champion, rescored_metrics=dict(evaluation.metrics), rescored_at=evaluation.at,
                            rescore_reused=reused), evaluation.predictions, workdir)


def _evaluate(workdir: Path, config: Config, champion: Champion, step: Step, model_dir: Path) -> record.Evaluation:
    metrics_file = workdir / ("metrics" + Path(step.metrics or "metrics.json").suffix)
    predictions = workdir / "predictions.csv"
    # No secret of the job and no tracking credentials: whatever the step logs to mlflow while scoring the
    # champion goes to a scratch store that is thrown away, never to the tracking server as a stray run.
    env = {"MLFLOW_TRACKING_URI": (workdir / "scratch-tracking").as_uri(),
           **child_environment(os.environ, step.pass_env, secrets=config.secret_names), **step.env,
           ENV_MODEL_DIR: str(model_dir), ENV_METRICS_FILE: str(metrics_file), ENV_PREDICTIONS_FILE: str(predictions)}
    log(f"rescoring the champion {champion.label} with step '{step.name}' on today's data")
    at = record.now_utc()
    with _guarded(config.root, [p for p in (step.metrics, step.predictions) if p]):
        run_step(step, config.root, env, f"rescore {champion.label}")
    if not metrics_file.is_file():
        raise DataError(f"step '{step.name}' ran for the champion but did not write {ENV_METRICS_FILE}; to rescore, "
                        f"it must load the model from ${ENV_MODEL_DIR} and write metrics to ${ENV_METRICS_FILE} "
                        "(see examples/quickstart/evaluate.py), or set compare.rescore_champion: false.")
    return record.Evaluation(metrics_file, predictions if predictions.is_file() else None, at,
                             read_metrics(metrics_file))
