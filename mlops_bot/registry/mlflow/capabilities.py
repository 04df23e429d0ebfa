"""What a partial MLflow API (GitLab's) lacks, and the fallbacks the bot uses there; no I/O here.

A server's capabilities are learned from how it answers, never assumed from one probe (registry/mlflow/models.py
asks; this module holds what it learned and the pure parts of the fallbacks):

- **run search filters**: every search result is re-checked against the filter the bot asked for
  (`run_matches`); a server that returned a run the filter excludes (GitLab's `runs/search` has no `filter`
  parameter and searches one experiment) is searched experiment by experiment, every page, and filtered here.
- **version records**: GitLab has no `model-versions/set-tag` and keeps a run tag's first value for good, so the
  bot's records of a version (its lineage, verdict, deploy results, the champion alias as an alias tag) live in the
  version's description, the one field of a GitLab model version that can be rewritten
  (`PATCH model-versions/update`), as a JSON block in an HTML comment the GitLab UI does not show.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..base import Run

# --- the filter subset the bot writes (and the contract suite checks) ---------------------------------------

_CLAUSE = re.compile(
    r"""\s*(?:(?P<kind>tags|tag|params|param|metrics|metric|attributes|attribute|attr|run)\.)?
    (?P<key>`[^`]+`|"[^"]+"|[A-Za-z_][\w.\-]*)\s*
    (?P<op>!=|<>|>=|<=|=|>|<)\s*
    (?P<value>'[^']*'|"[^"]*"|-?\d+(?:\.\d+)?)\s*$""", re.VERBOSE)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_TIMES = ("start_time", "end_time")


@dataclass(frozen=True)
class Clause:
    kind: str  # tags | params | metrics | attributes
    key: str
    op: str
    value: str | float


def parse_filter(filter_string: str) -> list[Clause]:
    """`tags.x = 'y' and attributes.status = 'FINISHED' and attributes.end_time > 5 and metrics.m >= 0.5`;
    ValueError for anything else."""
    if not filter_string.strip():
        return []
    clauses = []
    for part in _split_and(filter_string):
        match = _CLAUSE.match(part)
        if match is None:
            raise ValueError(f"mlops-bot cannot check the search filter clause {part.strip()!r}")
        kind = {"tag": "tags", "param": "params", "metric": "metrics", "attribute": "attributes", "attr": "attributes",
                "run": "attributes", None: "attributes"}.get(match["kind"], match["kind"])
        key = match["key"].strip('`"')
        raw = match["value"]
        value: str | float = raw[1:-1] if raw[0] in "'\"" else float(raw)
        clauses.append(Clause(kind, key, "!=" if match["op"] == "<>" else match["op"], value))
    return clauses


def _split_and(text: str) -> list[str]:
    """Splits on `and` outside quotes."""
    parts: list[str] = []
    start, index, quote = 0, 0, ""
    while index < len(text):
        char = text[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char.isspace():
            found = _AND.match(text, index)
            if found:
                parts.append(text[start:index])
                start = index = found.end()
                continue
        index += 1
    parts.append(text[start:])
    return parts


def _field(run: Run, clause: Clause) -> str | float | None:
    if clause.kind == "tags":
        return run.tags.get(clause.key)
    if clause.kind == "params":
        return run.params.get(clause.key)
    if clause.kind == "metrics":
        return run.metrics.get(clause.key)
    key = clause.key.lower()
    if key in _TIMES:
        stamp: int | None = run.start_time if key == "start_time" else run.end_time
        return stamp
    return {"status": run.status, "run_id": run.run_id, "run_name": run.name, "experiment_id": run.experiment_id,
            "artifact_uri": run.artifact_uri}.get(key)


def run_matches(run: Run, clauses: list[Clause]) -> bool:
    return all(_holds(_field(run, c), c) for c in clauses)


def _holds(actual: str | float | None, clause: Clause) -> bool:
    if actual is None:
        return False
    expected = clause.value
    if isinstance(expected, float) or clause.kind == "metrics":
        try:
            left, right = float(actual), float(expected)
        except ValueError:
            return False
        pair: tuple[Any, Any] = (left, right)
    else:
        pair = (str(actual), str(expected))
    left, right = pair
    outcomes: dict[str, bool] = {"=": left == right, "!=": left != right, ">": left > right, ">=": left >= right,
                                 "<": left < right, "<=": left <= right}
    return outcomes[clause.op]


def order_runs(runs: list[Run], order_by: list[str]) -> list[Run]:
    """`attributes.start_time DESC` and the like, applied here (GitLab orders by its own columns only);
    MLflow's default (start_time DESC) when none is given."""
    ordered = sorted(runs, key=lambda r: r.run_id)
    for spec in reversed(order_by or ["attributes.start_time DESC"]):
        words = spec.split()
        column = words[0].split(".", 1)[-1].strip("`") if words else "start_time"
        descending = len(words) > 1 and words[1].upper() == "DESC"
        if column not in ("start_time", "end_time", "run_name", "status"):
            continue
        ordered.sort(key=lambda r: _order_key(r, column), reverse=descending)
    return ordered


def _order_key(run: Run, column: str) -> tuple[int, Any]:
    value = {"start_time": run.start_time, "end_time": run.end_time, "run_name": run.name,
             "status": run.status}[column]
    return (0, "") if value is None else (1, value)


# --- version records in a description -------------------------------------------------------------------------

MARK = "<!-- mlops-bot:records "
_END = " -->"
MAX_DESCRIPTION = 10_000  # GitLab's limit on a model version's description


@dataclass
class Records:
    """What the bot keeps on a version where the server has no version tags: the run and source it registered
    (GitLab ignores `source` and makes its own run) and the tags it set."""

    text: str = ""  # the description a person wrote, without the block
    run_id: str = ""
    source: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.run_id or self.source or self.tags)


def read_records(description: str) -> Records:
    head, mark, rest = description.partition(MARK)
    if not mark:
        return Records(text=description)
    body = rest.rsplit(_END, 1)[0]
    try:
        doc = json.loads(body)
    except ValueError:
        return Records(text=head.rstrip())
    if not isinstance(doc, dict):
        return Records(text=head.rstrip())
    tags = doc.get("tags")
    tags = tags if isinstance(tags, dict) else {}
    return Records(head.rstrip(), str(doc.get("run_id", "")), str(doc.get("source", "")),
                   {str(k): str(v) for k, v in tags.items() if str(v)})


def write_records(records: Records) -> str:
    """The description holding `records`; ValueError when it would pass GitLab's 10,000 characters."""
    doc = {"run_id": records.run_id, "source": records.source,
           "tags": {k: v for k, v in sorted(records.tags.items()) if v}}
    # Only strings are in the document: escaping '-' and '>' keeps the comment closed exactly where it ends.
    body = json.dumps(doc, ensure_ascii=True, separators=(",", ":")).replace("-", "\\u002d").replace(">", "\\u003e")
    text = f"{records.text}\n\n{MARK}{body}{_END}" if records.text else f"{MARK}{body}{_END}"
    if len(text) > MAX_DESCRIPTION:
        raise ValueError(f"the version's records need {len(text):,} characters of its description, more than the "
                         f"{MAX_DESCRIPTION:,} GitLab keeps")
    return text


def tags_with(doc_tags: Mapping[str, str], records: Records) -> dict[str, str]:
    """A version's tags: those given at creation (GitLab's metadata), then the records' (newer) ones."""
    merged = {**doc_tags, **records.tags}
    return {k: v for k, v in merged.items() if v}
