"""Split the handwritten-digits data set (bundled with scikit-learn, no download) into train and test CSV files."""

import csv
import os
from pathlib import Path

import yaml
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

params = yaml.safe_load(Path("params.yaml").read_text())["prepare"]
digits = load_digits()
rows = list(zip(range(len(digits.target)), (digits.data / 16.0).tolist(), digits.target.tolist(), strict=True))
train, test = train_test_split(rows, test_size=params["test_size"], random_state=params["seed"],
                               stratify=digits.target)

os.makedirs("build", exist_ok=True)
header = ["row_id", *[f"pixel_{i}" for i in range(digits.data.shape[1])], "label"]
for name, part in (("train", train), ("test", test)):
    with open(f"build/{name}.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row_id, features, label in part:
            writer.writerow([row_id, *(round(f, 4) for f in features), label])
print(f"wrote {len(train)} training and {len(test)} test rows")
