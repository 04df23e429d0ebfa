"""The champion's rescoring where its evaluation step runs: on the step's `backend:` cluster (pipeline/backends).

The contract is a local rescoring's (lifecycle/rescore): MLOPS_BOT_MODEL_DIR, MLOPS_BOT_METRICS_FILE and
MLOPS_BOT_PREDICTIONS_FILE, here paths inside the shipped working directory. On the cluster, remote_entry fetches
the champion's model from its run, runs the step with a throwaway tracking store (what it logs never becomes a run
on the server) and uploads the results into the rescoring record's folder on the champion's run, where the bot
reads them; rescore_record then tags the record, as after a local rescoring.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from ..config.model import Config, Step
from ..console import log
from ..errors import NotFound
from ..metrics.files import read_metrics
from ..pipeline.backends.base import RemoteStep, portable_environment, run_remote
from ..pipeline.tracking import MODEL_ARTIFACT
from ..registry.base import Registry
from ..support.environment import child_environment
from . import rescore_record as record

HERE = "mlops-bot-rescore"  # the folder in the cluster's working directory


class ChampionRun:
    """The champion's run as the cluster's job sees it (pipeline/backends/base.RunArtifacts)."""

    def __init__(self, registry: Registry, run_id: str, folder: str, dest: Path) -> None:
        self.registry, self.run_id, self.folder, self.dest = registry, run_id, folder, dest
        self.got: dict[str, Path] = {}  # name -> where it was downloaded

    def upload_file(self, path: Path, artifact_dir: str) -> None:
        with tempfile.TemporaryDirectory(dir=self.dest, prefix="upload-") as tmp:
            (Path(tmp) / path.name).write_bytes(path.read_bytes())
            self.registry.upload_artifacts(self.run_id, Path(tmp), artifact_dir)

    def fetch_outs(self, outs: list[str]) -> list[str]:
        """The metrics file must have come; the predictions may (an evaluation without them is still one)."""
        missing = []
        for name in [Path(out).name for out in outs] + [record.PREDICTIONS]:
            try:
                self.got[name] = self.registry.download_artifacts(self.run_id, f"{self.folder}/{name}",
                                                                  self.dest / "results")
            except NotFound:
                missing += [out for out in outs if Path(out).name == name]
        return missing


def evaluate_remote(config: Config, registry: Registry, run_id: str, step: Step, key: str | None,
                    dest: Path) -> record.Evaluation:
    """Runs `step` for the champion of `run_id` on its backend; its metrics (and predictions) downloaded into
    `dest`."""
    metrics = f"{HERE}/metrics{Path(step.metrics or 'metrics.json').suffix}"
    predictions = f"{HERE}/{record.PREDICTIONS}"
    folder = f"{record.RECORD_DIR}/{key or 'unkeyed-' + uuid.uuid4().hex[:12]}"
    env = {**child_environment(os.environ, step.pass_env, tracking=True, secrets=config.secret_names), **step.env,
           "MLFLOW_TRACKING_URI": registry.tracking_uri,  # the wrapper's; the step gets a scratch store
           record.ENV_MODEL_DIR: f"{HERE}/model", record.ENV_METRICS_FILE: metrics,
           record.ENV_PREDICTIONS_FILE: predictions}
    options = ("--fetch", f"{MODEL_ARTIFACT}={HERE}/model", "--optional-out", predictions, "--out-dir", folder,
               "--scratch-tracking")
    dest.mkdir(parents=True, exist_ok=True)
    at = record.now_utc()
    champion = ChampionRun(registry, run_id, folder, dest)
    run_remote(RemoteStep(step, config.root, portable_environment(env), champion,
                          f"rescore on {step.backend.type if step.backend else 'local'}", log, None,
                          outs=(metrics,), options=options))
    metrics_file = champion.got[Path(metrics).name]
    return record.Evaluation(metrics_file, champion.got.get(record.PREDICTIONS), at, read_metrics(metrics_file))
