"""Record batches of CSV, TSV and Parquet files, streamed with pyarrow; pyarrow's errors as DataErrors that name
the file. Every batch holds the planned columns in the planned order, each float64 (numeric) or string (text).

pyarrow is the optional extra `drift`, imported only here and only when data is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from ..errors import DataError, UsageError

BATCH_ROWS = 65_536
CSV_BLOCK = 1 << 22  # 4 MiB blocks: fewer, larger batches; pyarrow's 1 MiB default spends more per row
SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_CONVERSION = re.compile(r"In CSV column #(\d+): CSV conversion error to \w+: invalid value '(.*)'", re.S)


class TurnsText(Exception):
    """A column read as numbers met a value that is not one: the load starts again with it as text."""

    def __init__(self, column: str) -> None:
        super().__init__(column)
        self.column = column


@dataclass(frozen=True)
class Plan:
    """The columns to read, in order, and which of them are read as numbers (the others as text)."""

    names: tuple[str, ...]
    numeric: frozenset[str]
    listed_numeric: frozenset[str]  # a non-number in one of these is an error, not a reason to read it as text


def arrow() -> dict[str, ModuleType]:
    """pyarrow and the parts of it used here, or a UsageError saying how to install it."""
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.csv
        import pyarrow.parquet
    except ImportError as exc:
        raise UsageError("mlops-bot drift reads data with pyarrow, which is not installed: "
                         "pip install 'mlops-bot[drift]'") from exc
    return {"pa": pyarrow, "pc": pyarrow.compute, "csv": pyarrow.csv, "pq": pyarrow.parquet}


def file_format(path: Path) -> str:
    found = SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise UsageError(f"{path}: unknown data format {path.suffix or '(no suffix)'!r}; "
                         "use .csv, .tsv or .parquet files")
    return found


def _csv_options(path: Path, column_types: dict[str, Any] | None,
                 include: Sequence[str] = ()) -> tuple[Any, Any, Any]:
    csv = arrow()["csv"]
    delimiter = "\t" if file_format(path) == "tsv" else ","
    return (csv.ReadOptions(block_size=CSV_BLOCK), csv.ParseOptions(delimiter=delimiter),
            csv.ConvertOptions(column_types=column_types or {}, include_columns=list(include),
                               strings_can_be_null=True))


def inferred_types(path: Path) -> dict[str, str]:
    """Each column of the file and whether its values are numbers ("numeric") or not ("text"): Parquet's schema,
    or pyarrow's inference from the first block of a CSV (a later block can still turn a column to text)."""
    pa = arrow()["pa"]
    with _translated(path):
        if file_format(path) == "parquet":
            schema = arrow()["pq"].ParquetFile(path).schema_arrow
        else:
            reader = arrow()["csv"].open_csv(path, *_csv_options(path, None))
            schema = reader.schema
            reader.close()
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal, pa.types.is_null)
    return {f.name: "numeric" if any(test(f.type) for test in numeric) else "text" for f in schema}


def batches(path: Path, plan: Plan) -> Iterator[Any]:
    """The file's rows in batches of the planned columns, typed as planned."""
    if file_format(path) == "parquet":
        yield from _parquet_batches(path, plan)
    else:
        yield from _csv_batches(path, plan)


def _csv_batches(path: Path, plan: Plan) -> Iterator[Any]:
    modules = arrow()
    pa = modules["pa"]
    types = {name: pa.float64() if name in plan.numeric else pa.string() for name in plan.names}
    with _translated(path, plan):
        reader = modules["csv"].open_csv(path, *_csv_options(path, types, plan.names))
        try:
            yield from reader
        finally:
            reader.close()


def _parquet_batches(path: Path, plan: Plan) -> Iterator[Any]:
    modules = arrow()
    pa, pc = modules["pa"], modules["pc"]
    with _translated(path):
        source = modules["pq"].ParquetFile(path)
        for batch in source.iter_batches(batch_size=BATCH_ROWS, columns=list(plan.names)):
            columns = []
            for name in plan.names:
                column = batch.column(name)
                if name not in plan.numeric:
                    columns.append(pc.cast(column, pa.string()))
                    continue
                try:
                    columns.append(pc.cast(column, pa.float64()))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    if name not in plan.listed_numeric:
                        raise TurnsText(name) from None
                    raise not_a_number(path, name) from None
            yield pa.RecordBatch.from_arrays(columns, names=list(plan.names))


class _translated:
    """pyarrow's exceptions while reading `path` -> DataError naming the file (or TurnsText, or the error of a
    non-number in a column listed as numeric)."""

    def __init__(self, path: Path, plan: Plan | None = None) -> None:
        self.path, self.plan = path, plan

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> Literal[False]:
        if exc is None or isinstance(exc, (TurnsText, DataError, UsageError, GeneratorExit)):
            return False
        if isinstance(exc, FileNotFoundError):
            raise DataError(f"{self.path}: no such file") from exc
        if isinstance(exc, OSError) and not isinstance(exc, arrow()["pa"].ArrowException):
            raise DataError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        if not isinstance(exc, arrow()["pa"].ArrowException):
            return False
        message = str(exc)
        conversion = _CONVERSION.search(message)
        if conversion and self.plan is not None:
            names = list(inferred_types(self.path))
            column = names[int(conversion.group(1))] if int(conversion.group(1)) < len(names) else None
            if column in self.plan.names and column not in self.plan.listed_numeric:
                raise TurnsText(column) from None
            if column is not None:
                raise not_a_number(self.path, column) from None
        raise DataError(f"{self.path}: cannot be read as {file_format(self.path).upper()}: "
                        f"{shown(message.strip(), 300)}") from exc


def not_a_number(path: Path, column: str) -> DataError:
    """The error for the first value of `column` that is not a number (listed in monitor.numeric): the file is
    read again, as text, to find its row."""
    modules = arrow()
    pa, pc = modules["pa"], modules["pc"]
    text = Plan(names=(column,), numeric=frozenset(), listed_numeric=frozenset())
    before = 0
    for batch in batches(path, text):
        values = batch.column(0)
        try:
            pc.cast(values, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for i, value in enumerate(values.to_pylist()):
                if value is not None and not _is_number(pa, pc, value):
                    row = before + i + 1
                    line = f":{row + 1}" if file_format(path) != "parquet" else ""
                    return DataError(f"{path}{line}: column {shown(column)}, row {row}: {shown(value)} is not a "
                                     "number, and monitor.numeric lists the column; fix the value or list the "
                                     "column in monitor.categorical")
        before += batch.num_rows
    return DataError(f"{path}: column {shown(column)} holds a value that is not a number, and monitor.numeric "
                     "lists the column")


def _is_number(pa: Any, pc: Any, value: str) -> bool:
    try:
        pc.cast(pa.array([value]), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def shown(value: object, limit: int = 60) -> str:
    """A value from the data, quoted and cut, with control characters escaped: safe on a terminal line."""
    text = repr(str(value))
    return text if len(text) <= limit else text[: limit - 2] + "…" + text[0]
