"""The cells of a predictions file: labels, numbers and probabilities, each checked where it stands (file, line,
column) with what to write instead. predictions.py reads and pairs the files; the rules are in its docstring. Pure."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal, Protocol

from ..errors import DataError
from .numbers import fmt
from .reading import shown

Task = Literal["classification", "regression"]
LABELS = ("y_true", "y_pred")
PROBA = "proba_"
SUM_TOLERANCE = 1e-6
_INTEGER = re.compile(r"[-+]?[0-9]+")
_NUMBER = re.compile(r"[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE)
_EXACT = 2.0**53  # a float label is a whole number exactly only below this


class Rows(Protocol):
    """What the checks read of a predictions file (predictions.Predictions)."""

    @property
    def path(self) -> Path: ...
    @property
    def columns(self) -> Mapping[str, tuple[str, ...]]: ...
    @property
    def lines(self) -> tuple[int, ...]: ...


def number(cell: str) -> float | None:
    """The cell as a number (NaN and infinity too), None when it is not one. Only decimal numbers in ASCII digits
    count: Python's float() also reads "1_000" and other scripts' digits, which a CSV writer never means."""
    return float(cell) if _NUMBER.fullmatch(cell) else None


def label(cell: str) -> str:
    """A label as one spelling: a whole number as its digits ("1.0", "+1", "01" -> "1"), anything else as written."""
    try:
        if _INTEGER.fullmatch(cell):
            return str(int(cell))
    except ValueError:  # more than 4,300 digits: a name, not a number
        return cell
    value = number(cell)
    return str(int(value)) if value is not None and value.is_integer() and abs(value) < _EXACT else cell


def key(cell: str) -> float | str:
    """What y_true compares by across files: the number when the cell is one ("1" == "1.0"), else the text."""
    value = number(cell)
    return cell if value is None else value


def check_file(rows: Rows) -> dict[str, str]:
    """The checks one file allows on its own (see predictions.py); the proba_<class> columns by their class."""
    for column in LABELS:
        for cell, line in zip(rows.columns.get(column, ()), rows.lines, strict=False):
            value = number(cell)
            if not cell or (value is not None and not math.isfinite(value)):
                what = "the true label or target" if column == "y_true" else "the model's prediction"
                problem = "is empty" if not cell else f"holds {shown(cell)}, not a label or a finite number"
                raise DataError(f"{rows.path}:{line}: column {column!r} {problem}; write {what} in every row.")
    classes = _classes(rows)
    for column in ("y_score", "score", *classes.values()):
        if column in rows.columns:
            numbers(rows, column)
    if classes:
        _sums(rows, classes)
    truths: dict[str, int] = {}  # y_true's labels, each with its first line
    for cell, line in zip(rows.columns.get("y_true", ()), rows.lines, strict=False):
        truths.setdefault(label(cell), line)
    for truth, line in truths.items():
        if classes and truth not in classes:
            raise DataError(f"{rows.path}:{line}: y_true holds the label {truth!r} but there is no "
                            f"{PROBA}{truth} column (found: {', '.join(classes.values())}); name one "
                            f"{PROBA}<class> column after each of y_true's labels.")
    if "y_score" in rows.columns and len(truths) > 2:
        raise DataError(f"{rows.path}:1: y_score is the positive class's score of a binary task, but y_true holds "
                        f"{len(truths)} labels ({_some(truths)}); write one {PROBA}<class> column per class instead.")
    return classes


def numbers(rows: Rows, column: str) -> tuple[float, ...]:
    """The column's cells as finite numbers; a DataError at the first that is not one."""
    out = []
    for cell, line in zip(rows.columns[column], rows.lines, strict=True):
        value = number(cell)
        if value is None or not math.isfinite(value):
            problem = "is empty" if not cell else f"holds {shown(cell)}, not a finite number"
            raise DataError(f"{rows.path}:{line}: column {column!r} {problem}; write a number in every row.")
        out.append(value)
    return tuple(out)


def task_of(y_true: Sequence[str], y_preds: Iterable[Sequence[str]]) -> Task:
    """Regression when y_true holds numbers and one is not whole, or when they are all whole (counts) and a y_pred
    holds a fraction outside [0, 1]; otherwise classification (labels: names, or whole numbers such as 0 and 1)."""
    truths = [number(cell) for cell in y_true]
    if any(t is None for t in truths):
        return "classification"
    if any(t is not None and not t.is_integer() for t in truths):
        return "regression"
    for cells in y_preds:
        for cell in cells:
            value = number(cell)
            if value is not None and not value.is_integer() and not 0 <= value <= 1:
                return "regression"
    return "classification"


def predicted(rows: Rows, task: Task, y_true: Sequence[str]) -> tuple[str, ...]:
    """The y_pred column in one spelling (labels as `label`, regression numbers as `repr`), each cell checked."""
    out = []
    for cell, line in zip(rows.columns["y_pred"], rows.lines, strict=True):
        value = number(cell)
        where = f"{rows.path}:{line}: column 'y_pred'"
        if task == "regression":
            if value is None:
                raise DataError(f"{where}: {shown(cell)} is not a number; y_true holds numeric targets (regression), "
                                "so y_pred must hold the predicted numbers.")
            out.append(repr(value))
        elif value is not None and not value.is_integer():
            truths = _some(dict.fromkeys(label(c) for c in y_true))
            if 0 <= value <= 1:
                raise DataError(f"{where}: {cell} is a probability, not a label (y_true holds labels: {truths}); "
                                "write the predicted label in y_pred, and the probabilities in y_score (binary) or "
                                f"{PROBA}<class> columns.")
            raise DataError(f"{where}: {cell} is not a class label (y_true holds labels: {truths}); write the "
                            "predicted class.")
        else:
            out.append(label(cell))
    return tuple(out)


def _classes(rows: Rows) -> dict[str, str]:
    out: dict[str, str] = {}
    for column in rows.columns:
        if column.startswith(PROBA):
            name = label(column[len(PROBA):])
            if not name or out.setdefault(name, column) != column:
                what = "names no class" if not name else f"is the class {name!r} of column {out[name]!r} again"
                raise DataError(f"{rows.path}:1: column {column!r} {what}; name one {PROBA}<class> column after "
                                "each of y_true's labels.")
    return out


def _sums(rows: Rows, classes: Mapping[str, str]) -> None:
    columns = [rows.columns[c] for c in classes.values()]
    for i, line in enumerate(rows.lines):
        cells = [column[i] for column in columns]
        for name, value in zip(classes.values(), map(float, cells), strict=True):
            if not 0 <= value <= 1:
                raise DataError(f"{rows.path}:{line}: column {name!r}: {fmt(value)} is not a probability (0 to 1).")
        total = math.fsum(map(float, cells))
        if abs(total - 1) > SUM_TOLERANCE:
            alone = " (a binary task's positive-class probability alone goes in a y_score column)" \
                if len(columns) == 1 else ""
            raise DataError(f"{rows.path}:{line}: the {PROBA}<class> columns sum to {fmt(total)}, not 1; each row's "
                            f"probabilities must sum to 1 within 1e-6{alone}.")


def _some(values: Iterable[str], limit: int = 5) -> str:
    items = list(values)
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")
