"""Real MLflow Models for the mlflow_serve tests: a small classification table, sklearn models saved as MLflow
Models (as the quickstart's train.py saves one), their recorded predictions, and versions registered with both
in their run (`model` and `outs/<predictions>`, where the pipeline uploads them)."""

from __future__ import annotations

import csv
import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from mlops_bot.registry.base import Registry

MODEL = "serve-classifier"
PREDICTIONS = "build/predictions.csv"
FEATURES = 4


def write_rows(path: Path, count: int = 120) -> tuple[Any, Any]:
    """rows.csv (row_id, f0..f3, label) of three separable classes; returns (features, labels)."""
    import numpy as np

    rng = np.random.default_rng(7)
    labels = np.arange(count) % 3
    features = rng.normal(size=(count, FEATURES)) * 0.6 + labels[:, None] * 2.0
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row_id", *(f"f{i}" for i in range(FEATURES)), "label"])
        for row_id, (row, label) in enumerate(zip(features, labels, strict=True)):
            writer.writerow([row_id, *(round(float(v), 4) for v in row), int(label)])
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    return data[:, 1:-1], data[:, -1].astype(int)


def save_model(directory: Path, features: Any, labels: Any, c: float = 1.0) -> Any:
    """A LogisticRegression fitted on (features, labels), saved as an MLflow Model with a tensor signature."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=500).fit(features, labels)
    mlflow.sklearn.save_model(model, str(directory), signature=infer_signature(features, model.predict(features)))
    return model


def write_predictions(path: Path, labels: Any, predicted: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row_id", "y_true", "y_pred"])
        for row_id, (truth, guess) in enumerate(zip(labels, predicted, strict=True)):
            writer.writerow([row_id, int(truth), int(guess)])


def register(registry: Registry, model_dir: Path, predictions: Path, experiment: str = "serve",
             model: str = MODEL) -> str:
    """A finished run holding the model under `model` and the predictions under `outs/<PREDICTIONS>`, registered
    as a new version of `model`; returns the version."""
    exp = registry.get_or_create_experiment(experiment)
    run = registry.create_run(exp.experiment_id, "train")
    registry.upload_artifacts(run.run_id, model_dir, "model")
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / PREDICTIONS
        staged.parent.mkdir(parents=True)
        staged.write_bytes(predictions.read_bytes())
        registry.upload_artifacts(run.run_id, Path(tmp), "outs")
    registry.update_run(run.run_id, "FINISHED")
    registry.get_or_create_registered_model(model)
    artifact_uri = registry.get_run(run.run_id).artifact_uri
    return registry.create_model_version(model, f"{artifact_uri}/model", run.run_id).version


def score(url: str, rows: list[list[float]], timeout: float = 30) -> tuple[list[Any], str]:
    """POSTs rows to url/invocations; (predictions, the X-MLOps-Bot-Version header)."""
    body = json.dumps({"inputs": rows}).encode()
    request = urllib.request.Request(url + "/invocations", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())["predictions"], answer.headers.get("X-MLOps-Bot-Version", "")


def wait_gone(pid: int, timeout: float = 15) -> bool:
    """The process has exited (or is a zombie) within `timeout`."""
    from mlops_bot.deploy.serving import alive

    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


class Clients:
    """Scores through a front from a thread without pause (a short nap with `pause`); every answer kept as
    (time, the X-MLOps-Bot-Version header or "error", the predictions or the error)."""

    def __init__(self, url: str, rows: list[list[float]], pause: float = 0.0) -> None:
        self.url, self.rows, self.pause = url, rows, pause
        self.answers: list[tuple[float, str, Any]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                predictions, version = score(self.url, self.rows, timeout=10)
                self.answers.append((time.time(), version, predictions))
            except OSError as exc:
                self.answers.append((time.time(), "error", str(exc)))
            if self.pause:
                time.sleep(self.pause)

    def __enter__(self) -> Clients:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(15)
