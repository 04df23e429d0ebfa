"""Train a logistic regression on build/train.csv and save it as an MLflow Model under build/model/.

An MLflow Model (an `MLmodel` file beside the pickled estimator) carries its signature and an input example:
mlops-bot registers it as an MLflow 3 Logged Model, so `mlflow.pyfunc.load_model("models:/<name>@champion")`
and `mlflow models serve` work on the champion.
"""

import json
import os
import shutil
from pathlib import Path

import mlflow.sklearn
import numpy as np
import yaml
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

params = yaml.safe_load(Path("params.yaml").read_text())["train"]
data = np.loadtxt("build/train.csv", delimiter=",", skiprows=1)
features, labels = data[:, 1:-1], data[:, -1].astype(int)

model = LogisticRegression(C=params["C"], max_iter=params["max_iter"])
model.fit(features, labels)

shutil.rmtree("build/model", ignore_errors=True)  # save_model refuses a directory that exists
os.makedirs("build", exist_ok=True)
mlflow.sklearn.save_model(model, "build/model", signature=infer_signature(features, model.predict(features)),
                          input_example=features[:3])
Path("build/model/meta.json").write_text(json.dumps({"kind": "sklearn.LogisticRegression", "params": params}))
print(f"trained with C={params['C']} on {len(labels)} rows")
