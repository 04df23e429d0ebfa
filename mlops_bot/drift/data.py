"""One table of a drift check (the reference or the current data) read from CSV, TSV or Parquet files.

The files are streamed in batches (readers.py). With a sample size, a seeded uniform sample without replacement
is kept while streaming: each row draws a random key and the rows with the smallest keys stay, so memory holds
about twice the sample and one batch; null counts cover every row read. Without one, inputs above `max_mb` are
refused before anything is read.

A column is numeric unless a non-null value is not a number (or monitor.categorical lists it); a column listed
in monitor.numeric that holds a non-number is an error naming the file, the column, the row and the value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, UsageError
from .readers import Plan, TurnsText, arrow, batches, inferred_types, shown

MB = 1024 * 1024


@dataclass(frozen=True)
class LoadOptions:
    sample_rows: int | None  # None: every row (then inputs above max_mb are refused)
    seed: int
    max_mb: float
    numeric: tuple[str, ...]  # compared as numbers whatever the files' types; a non-number is an error
    categorical: tuple[str, ...]  # compared as categories whatever their values look like
    columns: tuple[str, ...] = ()  # (): every column; else only these (those the files lack are left out)


@dataclass(frozen=True)
class Table:
    """The rows kept of one table: per column a numpy array (float64 with NaN for nulls, or str/None objects)."""

    label: str  # "reference" or "current": how messages and reports name it
    files: tuple[str, ...]
    columns: Mapping[str, Any]  # name -> numpy array, in file order
    kinds: Mapping[str, str]  # name -> "numeric" | "categorical"
    nulls: Mapping[str, int]  # name -> nulls (and NaN) over every row read, sampled or not
    counts: Mapping[str, Mapping[str, int]]  # categorical name -> non-null value -> rows kept holding it
    rows_read: int
    rows_kept: int
    sampled: bool

    def null_share(self, name: str) -> float:
        return self.nulls[name] / self.rows_read if self.rows_read else 0.0


def load_table(paths: Sequence[Path], options: LoadOptions, label: str) -> Table:
    files = [Path(p) for p in paths]
    if not files:
        raise DataError(f"{label} data: no file to read (a glob that matches nothing?)")
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise DataError(f"{label} data: no such file: {', '.join(missing)}")
    _within_size(files, options, label)
    text: set[str] = set()
    while True:  # each pass that finds a column holding text reads it as text from the start: at most one per column
        try:
            return _load(files, options, label, frozenset(text))
        except TurnsText as turn:
            text.add(turn.column)


def _within_size(files: Sequence[Path], options: LoadOptions, label: str) -> None:
    if options.sample_rows is not None:
        return
    sizes = [(p, p.stat().st_size) for p in files]
    total = sum(size for _, size in sizes)
    if total <= options.max_mb * MB:
        return
    listed = ", ".join(f"{p} ({size / MB:,.1f} MB)" for p, size in sizes[:5])
    more = f" and {len(sizes) - 5} more" if len(sizes) > 5 else ""
    raise UsageError(f"{label} data is {total / MB:,.1f} MB, above monitor.max_mb ({options.max_mb:g} MB): "
                     f"{listed}{more}; set monitor.sample.rows to check a seeded random sample of the rows "
                     "(or raise monitor.max_mb)")


def _plan(files: Sequence[Path], options: LoadOptions, text: frozenset[str]) -> Plan:
    """The columns every file has (of those wanted) and how to read each; a column that is text in any file, or
    listed as categorical, is read as text everywhere."""
    kinds = [inferred_types(p) for p in files]
    names = [n for n in kinds[0] if not options.columns or n in options.columns]
    for path, found in zip(files[1:], kinds[1:], strict=True):
        lacking = [n for n in names if n not in found]
        if lacking:
            raise DataError(f"{path} lacks the column(s) {', '.join(shown(n) for n in lacking)} that {files[0]} "
                            "has; the files of one table need the same columns")
    listed = frozenset(options.numeric)
    numeric = {n for n in names if n in listed or (
        n not in options.categorical and n not in text and all(k[n] == "numeric" for k in kinds))}
    return Plan(names=tuple(names), numeric=frozenset(numeric), listed_numeric=listed & set(names))


def _load(files: Sequence[Path], options: LoadOptions, label: str, text: frozenset[str]) -> Table:
    plan = _plan(files, options, text)
    if not plan.names:
        raise DataError(f"{label} data: none of the columns {', '.join(shown(c) for c in options.columns)} "
                        f"is in {files[0]}")
    pc = arrow()["pc"]
    nulls = dict.fromkeys(plan.names, 0)
    sampler = _Sampler(options.sample_rows, options.seed)
    for path in files:
        for batch in batches(path, plan):
            for i, name in enumerate(plan.names):
                column = batch.column(i)
                nulls[name] += column.null_count
                if name in plan.numeric:
                    nulls[name] += int(pc.sum(pc.is_nan(column)).as_py() or 0)
            sampler.add(batch)
    if sampler.rows_read == 0:
        raise DataError(f"{label} data: no rows in {', '.join(str(p) for p in files)}")
    kept = sampler.result()
    columns, counts = _to_numpy(kept, plan)
    return Table(label=label, files=tuple(str(p) for p in files), columns=columns,
                 kinds={n: "numeric" if n in plan.numeric else "categorical" for n in plan.names},
                 nulls=nulls, counts=counts, rows_read=sampler.rows_read, rows_kept=kept.num_rows,
                 sampled=sampler.size is not None and sampler.rows_read > kept.num_rows)


def _to_numpy(kept: Any, plan: Plan) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    import numpy as np

    modules = arrow()
    pa, pc = modules["pa"], modules["pc"]
    columns: dict[str, Any] = {}
    counts: dict[str, dict[str, int]] = {}
    for name in plan.names:
        column = kept.column(name)
        if name in plan.numeric:
            columns[name] = pc.fill_null(column, float("nan")).to_numpy().astype(np.float64, copy=False)
            continue
        tally = pc.value_counts(column.drop_null() if column.null_count else column)
        values = tally.field("values").to_pylist()
        counts[name] = dict(zip(values, tally.field("counts").to_pylist(), strict=True))
        # codes into the distinct values (nulls -> the trailing None): one Python string per value, not per row
        codes = pc.fill_null(pc.index_in(column, value_set=pa.array(values, pa.string())), len(values))
        lookup = np.array([*values, None], dtype=object)
        columns[name] = lookup[codes.to_numpy().astype(np.int64, copy=False)] if len(column) else lookup[:0]
    return columns, counts


class _Sampler:
    """The rows kept so far: all of them, or the `size` rows with the smallest random keys (a uniform sample
    without replacement, the same for the same seed and the same files)."""

    def __init__(self, size: int | None, seed: int) -> None:
        import numpy as np

        self.size = size
        self.rng = np.random.default_rng(seed)
        self.rows_read = 0
        self.pending: list[Any] = []  # tables of rows kept
        self.keys: list[Any] = []  # their random keys
        self.where: list[Any] = []  # their positions among the rows read
        self.pending_rows = 0
        self.cut = float("inf")  # a row whose key is not below the largest key kept cannot enter the sample

    def add(self, batch: Any) -> None:
        import numpy as np

        pa = arrow()["pa"]
        n, start = batch.num_rows, self.rows_read
        self.rows_read += n
        if self.size is None:
            self.pending.append(batch)
            return
        keys = self.rng.random(n)
        chosen = np.flatnonzero(keys < self.cut)
        if len(chosen) == 0:
            return
        self.pending.append(pa.Table.from_batches([batch.take(chosen)]))
        self.keys.append(keys[chosen])
        self.where.append(chosen + start)
        self.pending_rows += len(chosen)
        if self.pending_rows >= 2 * self.size:
            self._compact()

    def _compact(self) -> None:
        import numpy as np

        pa = arrow()["pa"]
        rows = pa.concat_tables(self.pending)
        keys, where = np.concatenate(self.keys), np.concatenate(self.where)
        if self.size is not None and len(keys) > self.size:
            best = np.argpartition(keys, self.size - 1)[: self.size]
            rows, keys, where = rows.take(best), keys[best], where[best]
            self.cut = float(keys.max())
        self.pending, self.keys, self.where = [rows.combine_chunks()], [keys], [where]
        self.pending_rows = len(keys)

    def result(self) -> Any:
        """The rows kept, in the order they were read."""
        import numpy as np

        pa = arrow()["pa"]
        if self.size is None:
            return pa.Table.from_batches(self.pending)
        self._compact()
        return self.pending[0].take(np.argsort(self.where[0], kind="stable"))
