"""Fair comparison: the champion's model judged on today's data by the same evaluation step.

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
from ..registry.base import Registry
from ..support.environment import child_environment
from ..support.paths import overlaps

ENV_MODEL_DIR = "MLOPS_BOT_MODEL_DIR"
ENV_METRICS_FILE = "MLOPS_BOT_METRICS_FILE"
ENV_PREDICTIONS_FILE = "MLOPS_BOT_PREDICTIONS_FILE"


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


def rescore(config: Config, registry: Registry, champion: Champion) -> Rescored:
    if not champion.run_id:
        raise DataError(f"the champion {champion.label} has no tracking run, so its model cannot be rescored; "
                        "set compare.rescore_champion: false.")
    step = scoring_step(config)
    workdir = Path(tempfile.mkdtemp(prefix="mlops-bot-rescore-"))
    try:
        return _rescore_in(workdir, config, registry, champion, step)
    except BaseException:  # the caller removes the work directory of a result, nobody that of a failure
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _rescore_in(workdir: Path, config: Config, registry: Registry, champion: Champion, step: Step) -> Rescored:
    assert champion.run_id
    model_dir = registry.download_artifacts(champion.run_id, MODEL_ARTIFACT, workdir / "champion")
    metrics_file = workdir / ("metrics" + Path(step.metrics or "metrics.json").suffix)
    predictions = workdir / "predictions.csv"
    # No secret of the job and no tracking credentials: whatever the step logs to mlflow while scoring the
    # champion goes to a scratch store that is thrown away, never to the tracking server as a stray run.
    env = {"MLFLOW_TRACKING_URI": (workdir / "scratch-tracking").as_uri(),
           **child_environment(os.environ, step.pass_env, secrets=config.secret_names), **step.env,
           ENV_MODEL_DIR: str(model_dir), ENV_METRICS_FILE: str(metrics_file), ENV_PREDICTIONS_FILE: str(predictions)}
    log(f"rescoring the champion {champion.label} with step '{step.name}' on today's data")
    with _guarded(config.root, [p for p in (step.metrics, step.predictions) if p]):
        run_step(step, config.root, env, f"rescore {champion.label}")
    if not metrics_file.is_file():
        raise DataError(f"step '{step.name}' ran for the champion but did not write {ENV_METRICS_FILE}; to rescore, "
                        f"it must load the model from ${ENV_MODEL_DIR} and write metrics to ${ENV_METRICS_FILE} "
                        "(see examples/quickstart/evaluate.py), or set compare.rescore_champion: false.")
    metrics = read_metrics(metrics_file)
    return Rescored(replace(champion, rescored_metrics=metrics), predictions if predictions.is_file() else None,
                    workdir)
