"""Rescoring done once: the champion's results on one set of evaluation inputs, recorded with its run.

The record's key is the evaluation step's cache key (pipeline/cache.step_inputs: command, deps, params, env)
with the model dep replaced by the champion's model digest. The same champion, evaluation code, data, params
and env give the same key on any runner, so a pull request's second push and the merge read what its first
check computed; a change to any of them, or a new champion, evaluates afresh.

A record is the step's metrics file and per-row predictions under the artifact path `mlops-bot-rescore/<key>/`
of the champion's run, then the tag `mlops_bot.rescore.<key>` with the time of the evaluation. The tag is
written last, so a record is found only once its files are complete. Writing is best effort: a token that may
not write to the champion's run only means the next check evaluates again.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..config.model import Config, Step
from ..console import log
from ..errors import BotError
from ..metrics.files import read_metrics
from ..pipeline.cache import canonical, load_params, step_inputs
from ..pipeline.hashing import Hasher, hash_bytes
from ..registry import tags
from ..registry.base import Registry, Run
from ..support.paths import overlaps
from ..support.state import state_path

RECORD_DIR = "mlops-bot-rescore"  # artifact path on the champion's run
# what the evaluation step is told when it scores the champion (lifecycle/rescore, rescore_remote)
ENV_MODEL_DIR = "MLOPS_BOT_MODEL_DIR"
ENV_METRICS_FILE = "MLOPS_BOT_METRICS_FILE"
ENV_PREDICTIONS_FILE = "MLOPS_BOT_PREDICTIONS_FILE"
PREDICTIONS = "predictions.csv"
_FORMAT = 1


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation of the champion wrote (the metrics file is named metrics.<suffix>), and when it ran."""

    metrics_file: Path
    predictions: Path | None
    at: str  # ISO 8601, UTC
    metrics: Mapping[str, float] = field(default_factory=dict)  # read from metrics_file


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def record_key(config: Config, step: Step, model_digest: str) -> str | None:
    """The key of this evaluation on the champion whose model hashes to `model_digest`; None when a dep of the
    step is missing here (nothing to key: the evaluation runs and fails or succeeds on its own)."""
    hasher = Hasher(config.root, state_path(config.root))
    params = load_params(config.root, config.params_file, {step.name: step})
    entry = step_inputs(step, hasher, params)
    hasher.save()
    model = config.model.artifact.rstrip("/")
    deps = {dep: f"champion-model:{model_digest}" if overlaps(dep, model) else digest
            for dep, digest in entry.deps.items()}
    if any(digest is None for digest in deps.values()):
        return None
    return hash_bytes(canonical({"format": _FORMAT, "cmd": entry.cmd, "deps": deps, "params": entry.params,
                                 "env": entry.env}).encode())


def model_digest(model_dir: Path) -> str:
    """The digest of a downloaded model directory, as the pipeline hashes the model it uploads."""
    return str(Hasher(model_dir.parent, model_dir.parent / ".hashes").hash(model_dir.name))


def find(registry: Registry, run: Run, key: str, dest: Path) -> Evaluation | None:
    """The record of `key` on the champion's run, downloaded into `dest`; None when there is none or it cannot
    be read (then the caller evaluates again)."""
    at = _recorded_at(run.tags.get(tags.rescore_tag(key), ""))
    if at is None:
        return None
    try:
        folder = registry.download_artifacts(run.run_id, f"{RECORD_DIR}/{key}", dest)
        metrics_file = next((p for p in sorted(folder.iterdir()) if p.stem == "metrics"), None)
        if metrics_file is None:
            raise BotError(f"run {run.run_id} has no metrics file under {RECORD_DIR}/{key}")
        metrics = read_metrics(metrics_file)
    except (BotError, OSError) as exc:
        log(f"mlops-bot: warning: the recorded rescoring of the champion cannot be read ({exc}); evaluating "
            "again.")
        return None
    predictions = folder / PREDICTIONS
    return Evaluation(metrics_file, predictions if predictions.is_file() else None, at, metrics)


def save(registry: Registry, run: Run, key: str, evaluation: Evaluation, digest: str) -> None:
    """Uploads the files, then tags the run (and its model digest, for a run trained before it was recorded)."""
    upload = Path(tempfile.mkdtemp(prefix="mlops-bot-record-"))
    try:
        shutil.copyfile(evaluation.metrics_file, upload / evaluation.metrics_file.name)
        if evaluation.predictions is not None:
            shutil.copyfile(evaluation.predictions, upload / PREDICTIONS)
        registry.upload_artifacts(run.run_id, upload, f"{RECORD_DIR}/{key}")
        record = {tags.rescore_tag(key): json.dumps({"format": _FORMAT, "at": evaluation.at}, separators=(",", ":"))}
        if not run.tags.get(tags.MODEL_DIGEST):
            record[tags.MODEL_DIGEST] = digest
        registry.log_batch(run.run_id, tags=record)
    except (BotError, OSError) as exc:
        log(f"mlops-bot: warning: the champion's rescoring was not recorded on run {run.run_id} ({exc}); the "
            "next check evaluates it again.")
    finally:
        shutil.rmtree(upload, ignore_errors=True)


def _recorded_at(value: str) -> str | None:
    try:
        doc = json.loads(value) if value else None
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT or not isinstance(doc.get("at"), str):
        return None
    return str(doc["at"])
