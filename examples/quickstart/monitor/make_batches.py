"""Writes the two current batches the quickstart's `monitor:` checks (committed; run again to remake them):
fresh.csv, 200 digits of prepare.py's test split (the model never trained on them); shifted.csv, the same
digits from a scanner that smears ink on the upper half of each image (inked pixels of rows 0-3: +0.35, at
most 1)."""

import csv
from pathlib import Path

import yaml
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

here = Path(__file__).parent
params = yaml.safe_load((here.parent / "params.yaml").read_text())["prepare"]
digits = load_digits()
_, unseen = train_test_split((digits.data / 16.0).tolist(), test_size=params["test_size"],
                             random_state=params["seed"], stratify=digits.target)  # as prepare.py splits
header = [f"pixel_{i}" for i in range(64)]
for name, ink in (("fresh", 0.0), ("shifted", 0.35)):
    with open(here / f"{name}.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for image in unseen[:200]:
            writer.writerow([round(min(1.0, v + ink) if i < 32 and v > 0 else v, 4) for i, v in enumerate(image)])
print("wrote 200 rows to fresh.csv and shifted.csv")
