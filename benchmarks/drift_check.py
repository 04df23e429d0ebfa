"""Time of a drift check on 1 GB of CSV and of Parquet, beside the time pyarrow takes just to read the same file,
in one run.

A generated table (4 numeric columns, 2 integer, 3 categorical, a few empty cells) is written under /tmp as a
~1 GB CSV and a ~1 GB Parquet file, plus a 200,000-row reference CSV; all are deleted at the end. For each
format: pyarrow reading the whole file (`read_csv`/`read_table`, multi-threaded), pyarrow streaming it in
batches as the check does (`open_csv`/`iter_batches`), then `load_table` + `check` on every row (no sample) and
on a seeded sample of `--sample` rows. Budget (issue #18): within a few times the read.
Run: .venv/bin/python benchmarks/drift_check.py [--size-mb 1024] [--sample 100000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from mlops_bot.config.model import CurrentData, DriftTest, Monitor
from mlops_bot.drift.check import check
from mlops_bot.drift.data import LoadOptions, load_table

CHUNK = 1_000_000
MONITOR = Monitor(current=CurrentData(path="current"),
                  numeric_tests=(DriftTest("ks", 0.01), DriftTest("wasserstein", 0.1), DriftTest("psi", 0.2)),
                  categorical_tests=(DriftTest("chi2", 0.01), DriftTest("jensen_shannon", 0.1),
                                     DriftTest("psi", 0.2)))


def chunk(rng: np.random.Generator, rows: int, shift: float) -> pa.Table:
    cities = np.array([f"city_{i}" for i in range(40)])
    x1 = rng.normal(shift, 1, rows)
    x1[rng.random(rows) < 0.01] = np.nan
    return pa.table({
        "x1": pa.array(x1, from_pandas=True), "x2": rng.lognormal(3, 1, rows), "x3": rng.uniform(0, 100, rows),
        "x4": rng.gamma(2.0, 2.0, rows), "n1": rng.integers(0, 1000, rows), "n2": rng.poisson(4, rows),
        "city": cities[rng.integers(0, len(cities), rows)], "plan": rng.choice(["free", "pro", "team"], rows),
        "device": rng.choice(["ios", "android", "web", "tv"], rows, p=[0.3, 0.4, 0.25, 0.05]),
    })


def write(path: Path, size_mb: float, shift: float, rows: int | None = None) -> int:
    """The table written to `path` in chunks: `rows` rows, or as many as make about `size_mb`; returns the rows."""
    rng = np.random.default_rng(11)
    if rows is None:  # bytes per row from a probe chunk in the same format
        probe = path.with_name("probe" + path.suffix)
        _write(probe, [chunk(rng, 100_000, shift)])
        rows = int(size_mb * 1024 * 1024 / (probe.stat().st_size / 100_000))
        probe.unlink()
    _write(path, (chunk(rng, min(CHUNK, rows - done), shift) for done in range(0, rows, CHUNK)))
    return rows


def _write(path: Path, parts: Iterable[pa.Table]) -> None:
    writer: Any = None
    try:
        for part in parts:
            if writer is None:
                writer = (pq.ParquetWriter(path, part.schema) if path.suffix == ".parquet"
                          else pcsv.CSVWriter(path, part.schema))
            writer.write_table(part)
    finally:
        if writer is not None:
            writer.close()


def timed(what: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    found = what()
    return time.perf_counter() - start, found


def read_all(path: Path) -> Any:
    return pq.read_table(path) if path.suffix == ".parquet" else pcsv.read_csv(path)


def stream(path: Path) -> int:
    if path.suffix == ".parquet":
        return sum(b.num_rows for b in pq.ParquetFile(path).iter_batches(batch_size=65_536))
    reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 22))
    return sum(b.num_rows for b in reader)


def drift_check(reference: Any, path: Path, sample: int | None) -> Any:
    current = load_table([path], LoadOptions(sample, 0, 4096.0, (), ()), "current")
    return check(reference, current, MONITOR)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=float, default=1024.0)
    parser.add_argument("--sample", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bot-drift-bench-", dir="/tmp"))
    try:
        ref_path = tmp / "reference.csv"
        write(ref_path, 0, 0.0, rows=200_000)
        reference = load_table([ref_path], LoadOptions(None, 0, 4096.0, (), ()), "reference")
        took, _ = timed(lambda: check(reference, reference, MONITOR))  # imports scipy.stats once, as a run does
        print(f"(importing scipy.stats and checking the reference against itself: {took:.2f} s, not counted below)")
        print(f"{'file':10} {'MB':>7} {'rows':>11} {'step':38} {'seconds':>8} {'x read':>7}")
        for suffix in (".csv", ".parquet"):
            path = tmp / f"current{suffix}"
            gen, rows = timed(lambda p=path: write(p, args.size_mb, 0.5))
            size = path.stat().st_size / 1024 / 1024
            stream(path)  # warm the page cache
            read, _ = timed(lambda p=path: read_all(p))
            streamed, _ = timed(lambda p=path: stream(p))
            rows_line = f"{suffix[1:]:10} {size:7.0f} {rows:11,}"
            print(f"{rows_line} {'(generated)':38} {gen:8.1f}")
            print(f"{rows_line} {'pyarrow read, whole table (threads)':38} {read:8.2f} {1:7.2f}")
            print(f"{rows_line} {'pyarrow stream, batches':38} {streamed:8.2f} {streamed / read:7.2f}")
            for sample in (None, args.sample):
                took, result = timed(lambda p=path, s=sample: drift_check(reference, p, s))
                what = "check, every row" if sample is None else f"check, sample of {sample:,} rows"
                drifted = ",".join(f.name for f in result.drifted_features)
                print(f"{rows_line} {what + ' (drift: ' + drifted + ')':38} {took:8.2f} {took / read:7.2f}")
            path.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
