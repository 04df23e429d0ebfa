"""Train a logistic regression on build/train.csv and save it under build/model/."""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression

params = yaml.safe_load(Path("params.yaml").read_text())["train"]
data = np.loadtxt("build/train.csv", delimiter=",", skiprows=1)
features, labels = data[:, 1:-1], data[:, -1].astype(int)

model = LogisticRegression(C=params["C"], max_iter=params["max_iter"])
model.fit(features, labels)

os.makedirs("build/model", exist_ok=True)
with open("build/model/model.pkl", "wb") as handle:
    pickle.dump(model, handle)
Path("build/model/meta.json").write_text(json.dumps({"kind": "sklearn.LogisticRegression", "params": params}))
print(f"trained with C={params['C']} on {len(labels)} rows")
