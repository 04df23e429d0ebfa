"""Score a model on build/test.csv: metrics JSON and per-row predictions.

The model is an MLflow Model (train.py), loaded as MLflow's generic python function, as a server would.

mlops-bot re-runs this step with the champion's model to compare both on today's data; it says which
model to load and where to write through MLOPS_BOT_MODEL_DIR, MLOPS_BOT_METRICS_FILE and
MLOPS_BOT_PREDICTIONS_FILE, so the defaults below are what a plain run uses.
"""

import csv
import json
import os
import pickle
import statistics
import time

import mlflow.pyfunc
import numpy as np
from sklearn.metrics import accuracy_score, f1_score

model_dir = os.environ.get("MLOPS_BOT_MODEL_DIR", "build/model")
metrics_file = os.environ.get("MLOPS_BOT_METRICS_FILE", "build/metrics.json")
predictions_file = os.environ.get("MLOPS_BOT_PREDICTIONS_FILE", "build/predictions.csv")

if os.path.exists(os.path.join(model_dir, "MLmodel")):
    model = mlflow.pyfunc.load_model(model_dir)
else:  # a champion trained before train.py saved MLflow Models: a bare pickled estimator
    with open(os.path.join(model_dir, "model.pkl"), "rb") as handle:
        model = pickle.load(handle)
data = np.loadtxt("build/test.csv", delimiter=",", skiprows=1)
row_ids, features, labels = data[:, 0].astype(int), data[:, 1:-1], data[:, -1].astype(int)

predicted = np.asarray(model.predict(features)).astype(int)
timings = []
for _ in range(20):
    start = time.perf_counter()
    model.predict(features)
    timings.append((time.perf_counter() - start) * 1000 / len(labels))

metrics = {
    "accuracy": round(float(accuracy_score(labels, predicted)), 6),
    "f1_macro": round(float(f1_score(labels, predicted, average="macro")), 6),
    "latency_ms": round(statistics.median(timings), 6),
}
os.makedirs(os.path.dirname(metrics_file) or ".", exist_ok=True)
with open(metrics_file, "w") as handle:
    json.dump(metrics, handle, indent=2)
with open(predictions_file, "w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["row_id", "y_true", "y_pred"])
    writer.writerows(zip(row_ids.tolist(), labels.tolist(), predicted.tolist(), strict=True))
print(json.dumps(metrics))
