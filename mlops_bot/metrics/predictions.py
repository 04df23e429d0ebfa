"""Per-row predictions of both models, read and paired for the significance tests. Pure apart from reading.

A predictions CSV has a row id column (`row_id` or `id`) and any of:
  - `y_true` and `y_pred`: labels (classification) or numbers (regression);
  - `y_score` (binary: the probability or score of the positive class) or `proba_<class>` columns (one per
    class, each row summing to 1 within 1e-6): for log loss and AUC;
  - a column named after a metric, or `score`: that metric's per-row value (a per-row mean metric the user
    defines, e.g. a custom loss); the metric is its mean.

`read_predictions` refuses in one file, naming the file, the line and the column: no row id column, a column
named twice, a row with another number of cells, an empty or repeated row id; an empty cell in y_true or y_pred,
or NaN or infinity there; a cell of y_score, score or a proba_<class> column that is empty or not a finite number,
a probability outside [0, 1], a row whose proba_<class> columns do not sum to 1 within 1e-6, a y_true label with no
proba_<class> column (there may be more classes than y_true shows), and y_score beside more than two labels.

`pair_predictions` refuses two files that do not hold the same row ids (the missing rows named on both sides) or
give another y_true for a row id (numbers compare as numbers, "1" == "1.0"; the first differing rows named with
their lines in both files), and then tells the task from y_true:
  - classification when y_true holds a name (`cat`) or only whole numbers (`0`, `1`, `7`); a y_pred cell holding a
    fraction is refused there, as a probability when it is within [0, 1] (labels go in y_pred, probabilities in
    y_score or proba_<class>);
  - regression when y_true holds numbers and one is not whole (`2.5`), or all are whole (counts) and a y_pred of
    either file holds a fraction outside [0, 1] (`3.7`); every y_pred cell must then be a number.
Labels come out in one spelling (`cells.label`: "1.0" and "01" are "1"), regression numbers as `repr(float)`.
`ModelRows.columns` holds y_score, proba_<class> (by the label's spelling), score and the columns named in
`metrics`, each a finite number in every row or refused; other columns only when every cell is a finite number
(a text or partly missing column is left out, not refused: it may be an input feature).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import DataError
from .cells import LABELS, PROBA, Task, check_file, key, label, number, numbers, predicted, task_of
from .reading import read_text

ID_COLUMNS = ("row_id", "id")
__all__ = ["ID_COLUMNS", "ModelRows", "PairedRows", "Predictions", "Task", "pair_predictions", "read_predictions"]


@dataclass(frozen=True)
class Predictions:
    """A predictions CSV as read and checked on its own: one row per evaluated example, keyed by its row id."""

    path: Path
    ids: tuple[str, ...]
    columns: Mapping[str, tuple[str, ...]]  # column -> one cell per row (stripped), in file order
    lines: tuple[int, ...]  # the file line of each row, for messages
    classes: Mapping[str, str] = field(default_factory=dict)  # label -> its proba_<class> column


@dataclass(frozen=True)
class ModelRows:
    """One model's predictions on the paired rows, in pairing order."""

    path: Path
    y_pred: tuple[str, ...] | None = None  # labels in one spelling, or numbers (`repr`) for regression
    columns: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # numeric columns: y_score, proba_<c>,
    #                                                                          per-row metric columns, score


@dataclass(frozen=True)
class PairedRows:
    """Both models on the same rows: ids and y_true from the challenger's file, which the champion's file must
    repeat exactly (checked on pairing)."""

    ids: tuple[str, ...]
    y_true: tuple[str, ...] | None  # as y_pred: labels in one spelling, or numbers (`repr`) for regression
    challenger: ModelRows
    champion: ModelRows
    task: Task | None = None  # None: the files have no y_true


def read_predictions(path: Path | str) -> Predictions:
    """The file's rows, checked on their own (see above); a DataError names the file, the line and the column."""
    path = Path(path)
    reader = csv.reader(io.StringIO(read_text(path, "predictions file")))
    try:
        header = [h.strip() for h in next((r for r in reader if r), [])]
        id_column = _id_column(path, reader.line_num, header)
        cells: list[list[str]] = [[] for _ in header]
        lines: list[int] = []
        first_line: dict[str, int] = {}
        for row in reader:
            if not row:
                continue  # a blank line
            if len(row) != len(header):
                raise DataError(f"{path}:{reader.line_num}: {len(header)} columns expected; the row has {len(row)}.")
            row_id = row[id_column].strip()
            if not row_id:
                raise DataError(f"{path}:{reader.line_num}: the row id is empty; every row needs its own.")
            if first_line.setdefault(row_id, reader.line_num) != reader.line_num:
                raise DataError(f"{path}:{reader.line_num}: row id {row_id!r} appears twice (first at line "
                                f"{first_line[row_id]}); row ids must be unique.")
            lines.append(reader.line_num)
            for column, cell in zip(cells, row, strict=True):
                column.append(cell.strip())
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: not valid CSV: {exc}.") from None
    if not lines:
        raise DataError(f"{path}: predictions file has a header but no rows.")
    columns = {name: tuple(column) for name, column in zip(header, cells, strict=True)}
    predictions = Predictions(path, columns[header[id_column]], columns, tuple(lines))
    return replace(predictions, classes=check_file(predictions))


def _id_column(path: Path, line: int, header: list[str]) -> int:
    seen: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        if name and seen.setdefault(name, i) != i:
            raise DataError(f"{path}:{line}: columns {seen[name]} and {i} are both named {name!r}; name each "
                            "column once.")
    found = next((c for c in ID_COLUMNS if c in seen), None)
    if found is None:
        raise DataError(f"{path}:{line}: no row id column; add a `row_id` column so both models' rows can be paired.")
    return seen[found] - 1


def pair_predictions(challenger: Predictions, champion: Predictions, *, metrics: Iterable[str] = ()) -> PairedRows:
    """Both files' rows in the challenger's order, checked against each other (see above). `metrics`: the
    per-row metric columns the test will read, each to hold a finite number in every row where it is present."""
    order = _order(challenger, champion)
    truth = _same_truth(challenger, champion, order)
    task = None
    if truth is not None:
        task = task_of(truth, [p.columns["y_pred"] for p in (challenger, champion) if "y_pred" in p.columns])
    y_true = None if truth is None else tuple(_spelled(cell, task) for cell in truth)
    strict = set(metrics)
    ours = _model(challenger, task, truth or (), strict, None)
    theirs = _model(champion, task, truth or (), strict, order)
    return PairedRows(challenger.ids, y_true, ours, theirs, task)


def _order(ours: Predictions, theirs: Predictions) -> list[int]:
    """Where each of our rows is in theirs; a DataError naming the rows that only one file holds."""
    position = {row_id: i for i, row_id in enumerate(theirs.ids)}
    only_ours = [(r, line) for r, line in zip(ours.ids, ours.lines, strict=True) if r not in position]
    if only_ours or len(ours.ids) != len(theirs.ids):
        known = set(ours.ids)
        only_theirs = [(r, line) for r, line in zip(theirs.ids, theirs.lines, strict=True) if r not in known]
        sides = [f"{len(rows)} row{'s' * (len(rows) > 1)} only in {pred.path} ({_rows(rows)})" for rows, pred in
                 ((only_ours, ours), (only_theirs, theirs)) if rows]
        raise DataError(f"{ours.path} and {theirs.path} do not hold the same rows: {'; '.join(sides)}; both models "
                        "must be scored on the same rows.")
    return [position[row_id] for row_id in ours.ids]


def _same_truth(ours: Predictions, theirs: Predictions, order: list[int]) -> tuple[str, ...] | None:
    if ("y_true" in ours.columns) != ("y_true" in theirs.columns):
        has, lacks = (ours, theirs) if "y_true" in ours.columns else (theirs, ours)
        raise DataError(f"{lacks.path}:1: no y_true column, but {has.path} has one; write y_true in both files, so "
                        "that the pairing can check that they hold the same rows.")
    if "y_true" not in ours.columns:
        return None
    a, b = ours.columns["y_true"], theirs.columns["y_true"]
    differ = [(i, j) for i, j in enumerate(order) if key(a[i]) != key(b[j])]
    if differ:
        first = "; ".join(f"row id {ours.ids[i]!r} is {a[i]!r} at {ours.path}:{ours.lines[i]} but {b[j]!r} at "
                          f"{theirs.path}:{theirs.lines[j]}" for i, j in differ[:3])
        raise DataError(f"{ours.path} and {theirs.path} give another y_true for {len(differ)} of {len(order)} rows "
                        f"({first}{' ...' if len(differ) > 3 else ''}); both files must hold the same rows with the "
                        "same true values: is one of them shuffled, or written from another split?")
    return a


def _model(pred: Predictions, task: Task | None, truth: tuple[str, ...], strict: set[str],
           order: list[int] | None) -> ModelRows:
    y_pred = None
    if "y_pred" in pred.columns:
        y_pred = predicted(pred, task, truth) if task else tuple(label(c) for c in pred.columns["y_pred"])
    columns = {f"{PROBA}{name}": numbers(pred, column) for name, column in pred.classes.items()}
    for column, cells in pred.columns.items():
        if column in ("y_score", "score") or column in strict:
            columns[column] = numbers(pred, column)
        elif column and column not in (*LABELS, *ID_COLUMNS) and not column.startswith(PROBA):
            values = [number(cell) for cell in cells]
            if all(v is not None and math.isfinite(v) for v in values):
                columns[column] = tuple(v for v in values if v is not None)
    if order is None:
        return ModelRows(pred.path, y_pred, columns)
    return ModelRows(pred.path, None if y_pred is None else tuple(y_pred[i] for i in order),
                     {name: tuple(values[i] for i in order) for name, values in columns.items()})


def _spelled(cell: str, task: Task | None) -> str:
    return repr(float(cell)) if task == "regression" else label(cell)


def _rows(rows: list[tuple[str, int]], limit: int = 3) -> str:
    named = ", ".join(f"{row_id!r} at line {line}" for row_id, line in rows[:limit])
    return named + (f" and {len(rows) - limit} more" if len(rows) > limit else "")
