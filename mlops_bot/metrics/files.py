"""A step's metrics file (JSON, YAML or CSV) -> {name: float}. Pure apart from reading the file.

Accepted shapes: a mapping of names to numbers (nested mappings flatten to dotted names, `{"test": {"acc":
0.9}}` -> `test.acc`); in CSV either a header of names over exactly one row of values, or two columns
`metric,value` (also `name,value` or `key,value`) with one metric a row. Anything else is a DataError that names
the file and the key or line: a missing or empty file, a list, a boolean, a string, null, NaN or infinity (the
last two are accepted with `allow_nonfinite=True`, for `compare`, which fails such a metric with a reason).
Per-row predictions for significance tests are read by `read_predictions`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError
from .numbers import fmt

_LONG_NAMES = ("metric", "name", "key")
MAX_METRICS = 100_000  # names in one file, counted through YAML aliases: a file past it is broken or a bomb
MAX_NESTING = 64  # levels of a dotted name; a YAML alias can make a mapping that contains itself


def read_metrics(path: Path | str, *, allow_nonfinite: bool = False) -> dict[str, float]:
    """The metrics in `path`; raises DataError for anything that is not a flat (or nested) map of numbers."""
    path = Path(path)
    text = read_text(path, "metrics file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        raw = _csv_metrics(path, text)
    else:
        data = _json(path, text) if suffix == ".json" else _yaml(path, text)
        if not isinstance(data, Mapping):
            kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
            raise DataError(f"{path}: holds {kind}, not a mapping of metric names to numbers.")
        raw = _flatten(path, data)
    if not raw:
        raise DataError(f"{path}: holds no metrics; write at least one `name: number` pair.")
    return {key: _number(path, key, value, allow_nonfinite) for key, value in raw.items()}


def read_text(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found; check that the step writes it at this path.") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a {what}.") from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError; a NUL in the name
        raise DataError(f"{path}: cannot read the {what} ({exc}).") from None
    if not text.strip():
        raise DataError(f"{path}: {what} is empty.")
    return text


def _json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}.") from None
    except (ValueError, RecursionError) as exc:  # an integer of 4,301+ digits; nesting past the recursion limit
        raise DataError(f"{path}: cannot read the JSON ({_why(exc)}).") from None


def _yaml(path: Path, text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DataError(f"{path}{where}: not valid YAML: {problem}.") from None
    except (ValueError, LookupError, TypeError, AttributeError, ArithmeticError, RecursionError) as exc:
        raise DataError(f"{path}: cannot read the YAML ({_why(exc)}).") from None


def _why(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if "integer string conversion" in str(exc):
        return "a number has too many digits"
    if not isinstance(exc, ValueError):  # PyYAML's constructors index into an empty or unknown value
        return "a value does not fit its tag, such as `!!float ''` or `!!bool maybe`"
    return str(exc).splitlines()[0][:120]


def _flatten(path: Path, data: Mapping[Any, Any]) -> dict[str, object]:
    """Nested mappings -> dotted names, with limits on the levels and the names (YAML aliases can make a small file
    name billions, or a mapping that contains itself)."""
    out: dict[str, object] = {}
    stack: list[tuple[str, Iterator[tuple[Any, Any]]]] = [("", iter(data.items()))]
    seen = 0
    while stack:
        prefix, items = stack[-1]
        for key, value in items:
            seen += 1
            if seen > MAX_METRICS:
                raise DataError(f"{path}: holds more than {MAX_METRICS} values; a metrics file names a few metrics.")
            if isinstance(value, Mapping) and value:
                if len(stack) >= MAX_NESTING:
                    raise DataError(f"{path}: metric {prefix}{key} nests more than {MAX_NESTING} levels deep.")
                stack.append((f"{prefix}{key}.", iter(value.items())))
                break  # the nested mapping first, then the rest of this one: the file's order
            out[f"{prefix}{key}"] = value
        else:
            stack.pop()
    return out


def _csv_metrics(path: Path, text: str) -> dict[str, object]:
    rows = [r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{path}: holds no metrics; write a header of names over one row of values.")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if len(header) == 2 and header[0].lower() in _LONG_NAMES and header[1].lower() == "value":
        out: dict[str, object] = {}
        for line, row in enumerate(body, start=2):
            if len(row) != 2 or not row[0].strip():
                raise DataError(f"{path}:{line}: expected `name,value`, got {len(row)} cells.")
            out[row[0].strip()] = row[1].strip()
        return out
    if len(body) != 1:
        raise DataError(f"{path}: expected a header of metric names over exactly one row of values "
                        f"(or `metric,value` columns), found {len(body)} data rows.")
    if len(body[0]) != len(header):
        raise DataError(f"{path}:2: {len(body[0])} values under {len(header)} names.")
    return {name: cell.strip() for name, cell in zip(header, body[0], strict=True)}


def _number(path: Path, key: str, value: object, allow_nonfinite: bool) -> float:
    where = f"{path}: metric {key!r}"
    if isinstance(value, str) and path.suffix.lower() != ".csv":
        raise DataError(f"{where}: {value!r} is a string, not a number; write it unquoted.")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        shown = "null" if value is None else "{}" if isinstance(value, Mapping) else _shown(value)
        raise DataError(f"{where}: {shown} is not a number; metrics must be numbers.")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise DataError(f"{where}: {_shown(value)} is not a number.") from None
    if not math.isfinite(number) and not allow_nonfinite:
        raise DataError(f"{where}: {fmt(number)} is not a finite number; the evaluation produced no usable value.")
    return number


def _shown(value: object, limit: int = 80) -> str:
    """repr(value), shortened; an integer too long for Python to print (a YAML hex number) is described."""
    try:
        text = repr(value)
    except ValueError:
        return "an integer of more than 4,300 digits"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- per-row predictions ---------------------------------------------------------------------------------------

ID_COLUMNS = ("row_id", "id")
_SQUARED = ("mse", "rmse", "mean_squared_error", "root_mean_squared_error")
_ABSOLUTE = ("mae", "mean_absolute_error")


@dataclass(frozen=True)
class Predictions:
    """A predictions CSV: one row per evaluated example, keyed by its row id column."""

    path: Path
    ids: tuple[str, ...]
    columns: Mapping[str, tuple[str, ...]]  # column -> one cell per row, in file order
    lines: tuple[int, ...]  # the file line of each row, for messages


@dataclass(frozen=True)
class PairedScores:
    """Per-row scores of both models on the same rows, in the same order."""

    challenger: tuple[float, ...]
    champion: tuple[float, ...]
    source: str  # how the scores were derived, for the report
    greater_is_better: bool | None  # the scores' own direction; None: the metric's criterion decides


def read_predictions(path: Path | str) -> Predictions:
    path = Path(path)
    reader = csv.DictReader(io.StringIO(read_text(path, "predictions file")))
    header = [h.strip() for h in reader.fieldnames or ()]
    id_column = next((c for c in ID_COLUMNS if c in header), None)
    if id_column is None:
        raise DataError(f"{path}:1: no row id column; add a `row_id` column so both models' rows can be paired.")
    reader.fieldnames = header
    cells: dict[str, list[str]] = {h: [] for h in header}
    lines: list[int] = []
    first_line: dict[str, int] = {}
    for row in reader:
        if None in row or any(v is None for v in row.values()):
            raise DataError(f"{path}:{reader.line_num}: {len(header)} columns expected; the row has a different count.")
        row_id = (row[id_column] or "").strip()
        if row_id in first_line:
            raise DataError(f"{path}:{reader.line_num}: row id {row_id!r} appears twice (first at line "
                            f"{first_line[row_id]}); row ids must be unique.")
        first_line[row_id] = reader.line_num
        lines.append(reader.line_num)
        for h in header:
            cells[h].append((row[h] or "").strip())
    if not lines:
        raise DataError(f"{path}: predictions file has a header but no rows.")
    return Predictions(path, tuple(cells[id_column]), {h: tuple(v) for h, v in cells.items()}, tuple(lines))


def paired_scores(challenger: Predictions, champion: Predictions, metric: str) -> PairedScores:
    """Both files' per-row scores for `metric`, the champion's rows put in the challenger's order."""
    if len(challenger.ids) != len(champion.ids):
        raise DataError(f"{challenger.path} has {len(challenger.ids)} rows but {champion.path} has "
                        f"{len(champion.ids)}: both models must be scored on the same rows.")
    position = {row_id: i for i, row_id in enumerate(champion.ids)}
    for row_id, line in zip(challenger.ids, challenger.lines, strict=True):
        if row_id not in position:
            raise DataError(f"{challenger.path}:{line}: row id {row_id!r} is not in {champion.path}: both "
                            "models must be scored on the same rows.")
    order = [position[row_id] for row_id in challenger.ids]
    ours, source, direction = _scores(challenger, metric)
    theirs, _, _ = _scores(champion, metric)
    return PairedScores(tuple(ours), tuple(theirs[i] for i in order), source, direction)


def _scores(pred: Predictions, metric: str) -> tuple[list[float], str, bool | None]:
    columns = pred.columns
    if metric in columns:
        return _numbers(pred, metric), f"per-row `{metric}`", None
    if "score" in columns:
        return _numbers(pred, "score"), "per-row `score`", None
    if "y_true" in columns and "y_pred" in columns:
        truth, guess = _labels(pred, "y_true"), _labels(pred, "y_pred")
        if metric.lower() in _SQUARED + _ABSOLUTE:
            square = metric.lower() in _SQUARED
            errors = [_error(pred, i, t, g, square) for i, (t, g) in enumerate(zip(truth, guess, strict=True))]
            return errors, f"per-row {'squared' if square else 'absolute'} error from y_true, y_pred", False
        correct = [float(t == g) for t, g in zip(truth, guess, strict=True)]
        return correct, "per-row correctness (y_pred == y_true)", True
    raise DataError(f"{pred.path}:1: no per-row score for {metric!r}: add a `{metric}` or `score` column, or "
                    f"`y_true` and `y_pred` (columns found: {', '.join(columns)}).")


def _numbers(pred: Predictions, column: str) -> list[float]:
    out = []
    for cell, line in zip(pred.columns[column], pred.lines, strict=True):
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataError(f"{pred.path}:{line}: column {column!r}: {cell!r} is not a finite number.")
        out.append(value)
    return out


def _labels(pred: Predictions, column: str) -> list[float | str]:
    """Labels compare as numbers when they read as numbers ("1" == "1.0"), else as text."""
    out: list[float | str] = []
    for cell in pred.columns[column]:
        try:
            out.append(float(cell))
        except ValueError:
            out.append(cell)
    return out


def _error(pred: Predictions, i: int, truth: float | str, guess: float | str, square: bool) -> float:
    if isinstance(truth, str) or isinstance(guess, str) or not math.isfinite(truth - guess):
        bad = truth if isinstance(truth, str) or not math.isfinite(truth) else guess
        raise DataError(f"{pred.path}:{pred.lines[i]}: {bad!r} is not a finite number; an error metric needs "
                        "numeric y_true and y_pred.")
    return (truth - guess) ** 2 if square else abs(truth - guess)
