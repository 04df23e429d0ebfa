"""The quickstart's case: the reference is the champion's training table (an id, the features, the label) and the
current batch holds the features alone. Without monitor.features the id and the label are not compared and not
findings; a feature named in monitor.features that the batch lacks still is one. Read from CSV files as
`mlops-bot drift` reads them."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlops_bot.drift.check import check
from mlops_bot.drift.data import LoadOptions, Table, load_table
from mlops_bot.drift.render import render_markdown
from tests.helpers.drift_tables import monitor

PIXELS = [f"pixel_{i}" for i in range(4)]


def write(path: Path, header: list[str], rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def quickstart_like(tmp_path: Path) -> tuple[Path, Path]:
    """train.csv: row_id, pixel_0..3, label (as examples/quickstart/prepare.py writes); fresh.csv: the pixels."""
    rng = np.random.default_rng(7)
    train = [[i, *np.round(rng.uniform(0, 1, 4), 4).tolist(), int(rng.integers(0, 10))] for i in range(600)]
    fresh = [np.round(rng.uniform(0, 1, 4), 4).tolist() for _ in range(300)]
    return (write(tmp_path / "train.csv", ["row_id", *PIXELS, "label"], train),
            write(tmp_path / "fresh.csv", PIXELS, fresh))


def load(path: Path, label: str, features: tuple[str, ...] = ()) -> Table:
    options = LoadOptions(sample_rows=None, seed=0, max_mb=64.0, numeric=(), categorical=(), columns=features)
    return load_table([path], options, label)


def test_the_training_tables_id_and_label_are_not_findings(tmp_path: Path) -> None:
    train, fresh = quickstart_like(tmp_path)
    result = check(load(train, "reference"), load(fresh, "current"), monitor())
    assert result.findings == () and not result.drifted
    assert [f.name for f in result.features] == PIXELS
    assert result.not_compared == ("row_id", "label")
    report = render_markdown(result, "Data drift of digits v1")
    assert "**Findings**" not in report and "not in the current data" not in report
    assert "Not compared, in the reference data only: `row_id`, `label`" in report
    assert json.loads(result.to_json())["not_compared"] == ["row_id", "label"]


def test_the_columns_the_batch_lacks_stay_part_of_the_signature(tmp_path: Path) -> None:
    train, fresh = quickstart_like(tmp_path)
    today = check(load(train, "reference"), load(fresh, "current"), monitor())
    rows = list(csv.reader(fresh.open()))[1:]
    again = write(tmp_path / "again.csv", PIXELS, [list(reversed(r)) for r in reversed(rows)])  # other values
    assert check(load(train, "reference"), load(again, "current"), monitor()).signature() == today.signature()
    narrower = write(tmp_path / "narrower.csv", PIXELS[:3], [r[:3] for r in rows])
    lacking = check(load(train, "reference"), load(narrower, "current"), monitor())
    assert lacking.findings == () and lacking.not_compared == ("row_id", "pixel_3", "label")
    assert lacking.signature() != today.signature()  # the batch lost a column: another drift to act on


def test_a_named_feature_the_batch_lacks_is_still_a_finding(tmp_path: Path) -> None:
    train, _ = quickstart_like(tmp_path)
    rng = np.random.default_rng(8)
    short = write(tmp_path / "short.csv", PIXELS[:3], [np.round(rng.uniform(0, 1, 3), 4).tolist() for _ in range(300)])
    features = tuple(PIXELS)
    result = check(load(train, "reference", features), load(short, "current", features), monitor(features=features))
    assert [(f.kind, f.feature, f.detail) for f in result.findings] == [("missing_column", "pixel_3", "current")]
    assert result.not_compared == () and [f.name for f in result.features] == PIXELS[:3]
    assert "pixel_3" in render_markdown(result, "Data drift")
