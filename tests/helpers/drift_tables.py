"""Tables built in memory, as data.load_table builds them from files."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops_bot.config.model import CurrentData, DriftTest, Monitor
from mlops_bot.drift.data import Table

NUMERIC_ALL = (DriftTest("ks", 0.01), DriftTest("wasserstein", 0.1), DriftTest("psi", 0.2))
CATEGORICAL_ALL = (DriftTest("chi2", 0.01), DriftTest("jensen_shannon", 0.1), DriftTest("psi", 0.2))


def monitor(**changes: Any) -> Monitor:
    fields: dict[str, Any] = {"current": CurrentData(path="current.csv"), "numeric_tests": NUMERIC_ALL,
                              "categorical_tests": CATEGORICAL_ALL, "min_features": 1}
    return Monitor(**{**fields, **changes})


def table(label: str, **columns: Any) -> Table:
    """Numeric columns from float arrays (NaN empty), categorical ones from lists of str/None."""
    arrays: dict[str, Any] = {}
    kinds, nulls, counts = {}, {}, {}
    for name, values in columns.items():
        if isinstance(values, np.ndarray) and values.dtype.kind == "f":
            arrays[name], kinds[name], nulls[name] = values, "numeric", int(np.isnan(values).sum())
        else:
            arrays[name] = np.array(values, dtype=object)
            kinds[name], nulls[name] = "categorical", sum(v is None for v in values)
            tally: dict[str, int] = {}
            for v in values:
                if v is not None:
                    tally[v] = tally.get(v, 0) + 1
            counts[name] = tally
    rows = len(next(iter(arrays.values())))
    return Table(label=label, files=(f"{label}.csv",), columns=arrays, kinds=kinds, nulls=nulls, counts=counts,
                 rows_read=rows, rows_kept=rows, sampled=False)
