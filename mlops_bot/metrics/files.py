"""A step's metrics file (JSON, YAML or CSV) -> {name: float}. Pure apart from reading the file.

Accepted shapes: a mapping of names to numbers (nested mappings flatten to dotted names, `{"test": {"acc":
0.9}}` -> `test.acc`); in CSV either a header of names over exactly one row of values, or two columns
`metric,value` (also `name,value` or `key,value`) with one metric a row. YAML is read as YAML 1.2, like ml.yaml
(`support/yaml12`): `5e-1` is a number, a key `on` is the metric `on`, `yes` is text, and `<<` merge keys are
refused. Anything else is a DataError that names the file, the line where there is one, and the metric: a
missing or empty file, a list, a boolean, a string, null, NaN or infinity (the last two are accepted with
`allow_nonfinite=True`, for `compare`, which fails such a metric with a reason), and a metric written twice (a
key repeated, a `metric,value` row repeated, or `test.accuracy` beside `{test: {accuracy}}`), with both places.
Per-row predictions for significance tests: `predictions.py`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import DataError
from .numbers import fmt
from .reading import NotANumber, at, holds_no_mapping, read_text, shown, why

__all__ = ["MAX_METRICS", "MAX_NESTING", "Metric", "read_metrics"]

_LONG_NAMES = ("metric", "name", "key")
MAX_METRICS = 100_000  # names in one file, counted through YAML aliases: a file past it is broken or a bomb
MAX_NESTING = 64  # levels of a dotted name; a YAML alias can make a mapping that contains itself
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"(\s*:)?')  # outside strings, JSON has no quote: a left-to-right scan
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")

Items = list[tuple[str, Any, int | None]]  # a mapping's (key, value, line of the key) in the file's order


class Metric(NamedTuple):
    """One metric as the file writes it: its (dotted) name, its line, where it is in words, and its raw value."""

    name: str
    line: int | None
    place: str
    raw: Any


def read_metrics(path: Path | str, *, allow_nonfinite: bool = False) -> dict[str, float]:
    """The metrics in `path`; raises DataError for anything that is not a flat (or nested) map of numbers."""
    path = Path(path)
    text = read_text(path, "metrics file")
    suffix = path.suffix.lower()
    value_of: Callable[[Any], float]
    if suffix == ".csv":
        metrics, value_of = _csv_metrics(path, text), _cell
    elif suffix == ".json":
        data = _json(path, text)
        if not isinstance(data, _Object):
            holds_no_mapping(path, "a list" if isinstance(data, list) else f"a {type(data).__name__}")
        metrics, value_of = _flatten(path, data, _json_items), _json_value
    else:
        from .yamlfile import YamlDocument

        document = YamlDocument(path, text)
        metrics, value_of = _flatten(path, document.root, document.items), document.value
    if not metrics:
        raise DataError(f"{path}: holds no metrics; write at least one `name: number` pair.")
    _no_duplicates(path, metrics)
    return {m.name: _number(path, m, value_of, allow_nonfinite) for m in metrics}


def _number(path: Path, metric: Metric, value_of: Callable[[Any], float], allow_nonfinite: bool) -> float:
    where = f"{at(path, metric.line)}: metric {metric.name!r}"
    try:
        number = value_of(metric.raw)
    except NotANumber as exc:
        raise DataError(f"{where}: {exc}") from None
    if not math.isfinite(number) and not allow_nonfinite:
        raise DataError(f"{where}: {fmt(number)} is not a finite number; the evaluation produced no usable value.")
    return number


def _no_duplicates(path: Path, metrics: Sequence[Metric]) -> None:
    first: dict[str, Metric] = {}
    for metric in metrics:
        earlier = first.setdefault(metric.name, metric)
        if earlier is not metric:
            raise DataError(f"{at(path, metric.line)}: metric {metric.name!r} is written twice: {earlier.place} and "
                            f"{metric.place}; keep one of them.")


def _flatten(path: Path, root: Any, items_of: Callable[[Path, Any], Items | None]) -> list[Metric]:
    """Nested mappings -> dotted names, with limits on the levels and the names (YAML aliases can make a small file
    name billions, or a mapping that contains itself). `items_of` gives a non-empty mapping's items, else None."""
    out: list[Metric] = []
    top = items_of(path, root)
    if top is None:
        return out
    stack: list[tuple[tuple[str, ...], Iterator[tuple[str, Any, int | None]]]] = [((), iter(top))]
    seen = 0
    while stack:
        keys, items = stack[-1]
        for key, value, line in items:
            seen += 1
            if seen > MAX_METRICS:
                raise DataError(f"{path}: holds more than {MAX_METRICS} values; a metrics file names a few metrics.")
            nested = items_of(path, value)
            if nested is not None:
                if len(stack) >= MAX_NESTING:
                    raise DataError(f"{at(path, line)}: metric {'.'.join((*keys, key))} nests more than "
                                    f"{MAX_NESTING} levels deep.")
                stack.append(((*keys, key), iter(nested)))
                break  # the nested mapping first, then the rest of this one: the file's order
            where = f"key {' > '.join(repr(k) for k in (*keys, key))}" + (f" (line {line})" if line else "")
            out.append(Metric(".".join((*keys, key)), line, where, value))
        else:
            stack.pop()
    return out


# -- JSON ----------------------------------------------------------------------------------------------------


class _Object:
    """A JSON object as written: its pairs in order, a repeated key kept, and the line of each key."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs
        self.lines: list[int | None] = []

    def located(self, lines: Iterator[int]) -> Iterator[Any]:
        for _, value in self.pairs:
            self.lines.append(next(lines, None))
            yield value


def _json(path: Path, text: str) -> Any:
    try:
        data = json.loads(text, object_pairs_hook=_Object)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}.") from None
    except (ValueError, RecursionError) as exc:  # an integer of 4,301+ digits; nesting past the recursion limit
        raise DataError(f"{path}: cannot read the JSON ({why(exc)}).") from None
    newlines = [m.start() for m in re.finditer("\n", text)]
    keys = (bisect_right(newlines, m.start()) + 1 for m in _JSON_STRING.finditer(text) if m.group(1))
    stack: list[Iterator[Any]] = [iter((data,))]
    while stack:  # the keys in the file's order are the objects' keys met depth first: each gets its line
        value = next(stack[-1], stack)
        if value is stack:
            stack.pop()
        elif isinstance(value, _Object):
            stack.append(value.located(keys))
        elif isinstance(value, list):
            stack.append(iter(value))
    return data


def _json_items(path: Path, value: Any) -> Items | None:
    if not isinstance(value, _Object):
        return None
    return [(k, v, line) for (k, v), line in zip(value.pairs, value.lines, strict=True)] or None


def _json_value(value: Any) -> float:
    if isinstance(value, str):
        advice = "write it unquoted" if _JSON_NUMBER.fullmatch(value.strip()) else "metrics must be numbers"
        raise NotANumber(f"{shown(value)} is a string, not a number; {advice}.")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        what = "null" if value is None else "{}" if isinstance(value, _Object) else shown(value)
        raise NotANumber(f"{what} is not a number; metrics must be numbers.")
    try:
        return float(value)
    except OverflowError:
        raise NotANumber(f"{shown(value)} is too large for a number.") from None


# -- CSV -----------------------------------------------------------------------------------------------------


def _csv_metrics(path: Path, text: str) -> list[Metric]:
    reader = csv.reader(io.StringIO(text))
    try:
        rows = [(reader.line_num, r) for r in reader if any(cell.strip() for cell in r)]
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: not valid CSV: {exc}.") from None
    if not rows:
        raise DataError(f"{path}: holds no metrics; write a header of names over one row of values.")
    top, header = rows[0][0], [h.strip() for h in rows[0][1]]
    body = rows[1:]
    if len(header) == 2 and header[0].lower() in _LONG_NAMES and header[1].lower() == "value":
        out = []
        for line, row in body:
            if len(row) != 2 or not row[0].strip():
                raise DataError(f"{path}:{line}: expected `name,value`, got "
                                f"{'no name' if len(row) == 2 else f'{len(row)} cells'}.")
            out.append(Metric(row[0].strip(), line, f"the row at line {line}", row[1]))
        return out
    if len(body) != 1:
        raise DataError(f"{path}: expected a header of metric names over exactly one row of values "
                        f"(or `metric,value` columns), found {len(body)} data rows.")
    line, values = body[0]
    if len(values) != len(header):
        raise DataError(f"{path}:{line}: {len(values)} values under {len(header)} names.")
    column: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        if not name or column.setdefault(name, i) != i:
            what = "has no name; name every metric" if not name else \
                f"repeats metric {name!r} of column {column[name]}; keep one of them"
            raise DataError(f"{path}:{top}: column {i} of the header {what}.")
    named = zip(header, values, strict=True)
    return [Metric(name, line, f"column {i}", cell) for i, (name, cell) in enumerate(named, start=1)]


def _cell(cell: str) -> float:
    text = cell.strip()
    try:
        return float(text)
    except ValueError:
        raise NotANumber(f"{shown(text)} is not a number." if text else "the cell is empty; write a number.") from None
