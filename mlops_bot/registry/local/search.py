"""The subset of MLflow's run search syntax the embedded store understands; anything else is refused.

Filters: clauses joined by `and`, each `<identifier> <op> <value>` where the identifier is
`tags.<k>` / `params.<k>` (`=`, `!=` against a quoted string), `metrics.<k>` (numeric comparisons),
`attributes.status` / `attributes.run_name` / `attributes.run_id` (`=`, `!=`), or
`attributes.start_time` / `attributes.end_time` (numeric comparisons); `attributes.` may be left out.
Keys may be quoted with backticks or double quotes. Order: `attributes.start_time|end_time|run_name` or
`metrics.<k>`, then ASC or DESC; the default is start_time DESC, as in MLflow.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

from ...errors import UsageError
from ..base import Run

Predicate = Callable[[Run], bool]

_CLAUSE = re.compile(r"""^\s*(?P<ident>(?:[A-Za-z_]+\.)?(?:`[^`]+`|"[^"]+"|[\w.\-]+))
    \s*(?P<op>!=|>=|<=|=|>|<)\s*
    (?:(?P<str>'[^']*'|"[^"]*")|(?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?))\s*$""", re.VERBOSE)
_QUOTED = re.compile(r"""('[^']*'|"[^"]*"|`[^`]*`)""")
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_ENTITIES = {"attributes": "attributes", "attribute": "attributes", "attr": "attributes", "run": "attributes",
             "tags": "tags", "tag": "tags", "params": "params", "param": "params", "metrics": "metrics",
             "metric": "metrics"}
_STRING_ATTRS = {"status": "status", "run_name": "name", "run_id": "run_id"}
_NUMBER_ATTRS = ("start_time", "end_time")


def _refuse(text: str, why: str) -> UsageError:
    return UsageError(f"search filter {text!r}: {why}; the embedded store understands tags./params. = '<v>', "
                      "metrics./start_time/end_time comparisons and status = '<S>', joined by `and`.")


def _split_identifier(ident: str, text: str) -> tuple[str, str]:
    head, dot, rest = ident.partition(".")
    if dot and head.lower() in _ENTITIES:
        entity, key = _ENTITIES[head.lower()], rest
    elif ident.strip('`"') in _STRING_ATTRS or ident.strip('`"') in _NUMBER_ATTRS:
        entity, key = "attributes", ident
    else:
        raise _refuse(text, f"unknown identifier {ident!r}")
    if len(key) >= 2 and key[0] == key[-1] and key[0] in '`"':
        key = key[1:-1]
    return entity, key


def _clause(clause: str, text: str) -> Predicate:
    match = _CLAUSE.match(clause)
    if not match:
        raise _refuse(text, f"cannot read {clause.strip()!r}")
    entity, key = _split_identifier(match.group("ident"), text)
    op = _OPS[match.group("op")]
    literal, number = match.group("str"), match.group("num")
    if entity in ("tags", "params") or (entity == "attributes" and key in _STRING_ATTRS):
        if literal is None or match.group("op") not in ("=", "!="):
            raise _refuse(text, f"{entity}.{key} compares with = or != against a quoted string")
        return _string_predicate(entity, key, op, literal[1:-1])
    if entity == "metrics" or key in _NUMBER_ATTRS:
        if number is None:
            raise _refuse(text, f"{entity}.{key} compares against a number")
        return _number_predicate(entity, key, op, float(number))
    raise _refuse(text, f"unknown attribute {key!r}")


def _string_predicate(entity: str, key: str, op: Callable[[Any, Any], bool], value: str) -> Predicate:
    if entity == "attributes":
        field = _STRING_ATTRS[key]
        return lambda run: bool(op(getattr(run, field), value))
    source = "tags" if entity == "tags" else "params"
    return lambda run: key in getattr(run, source) and bool(op(getattr(run, source)[key], value))


def _number_predicate(entity: str, key: str, op: Callable[[Any, Any], bool], value: float) -> Predicate:
    def predicate(run: Run) -> bool:
        found = run.metrics.get(key) if entity == "metrics" else getattr(run, key)
        return found is not None and bool(op(found, value))

    return predicate


def _split_and(text: str) -> list[str]:
    """The clauses joined by `and`, leaving quoted strings and keys alone."""
    clauses = [""]
    for index, piece in enumerate(_QUOTED.split(text)):
        if index % 2:
            clauses[-1] += piece
            continue
        if re.search(r"(^|\s)(or|like|ilike|in)(\s|$)|[()]", piece, re.IGNORECASE):
            raise _refuse(text, "OR, LIKE, IN and parentheses are not supported")
        first, *rest = _AND.split(piece)
        clauses[-1] += first
        clauses.extend(rest)
    return clauses


def parse_filter(text: str) -> list[Predicate]:
    if not text.strip():
        return []
    return [_clause(part, text) for part in _split_and(text.strip())]


def _order_key(item: str) -> tuple[Callable[[Run], Any], bool]:
    words = item.split()
    descending = len(words) == 2 and words[1].upper() == "DESC"
    if not words or len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
        raise UsageError(f"order_by {item!r}: expected '<column> [ASC|DESC]'.")
    head, dot, rest = words[0].partition(".")
    entity = _ENTITIES.get(head.lower(), "") if dot else "attributes"
    key = (rest if dot else words[0]).strip('`"')
    if entity == "metrics":
        return (lambda run: run.metrics.get(key)), descending
    if entity == "attributes" and key in ("start_time", "end_time", "run_name"):
        field = "name" if key == "run_name" else key
        return (lambda run: getattr(run, field)), descending
    raise UsageError(f"order_by {item!r}: the embedded store orders by attributes.start_time, end_time, "
                     "run_name or metrics.<key>.")


def order_runs(runs: list[Run], order_by: Sequence[str]) -> list[Run]:
    """Sorted as MLflow would: the given keys (missing values last), then start_time DESC and run_id."""
    keys = [_order_key(item) for item in order_by] + [(lambda run: run.start_time, True)]
    ordered = sorted(runs, key=lambda run: run.run_id)
    for get, descending in reversed(keys):
        present = [run for run in ordered if get(run) is not None]
        missing = [run for run in ordered if get(run) is None]
        ordered = sorted(present, key=get, reverse=descending) + missing
    return ordered
